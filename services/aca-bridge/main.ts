/**
 * `node --import tsx services/aca-bridge/main.ts` — ACA bridges for hosts of the
 * topology registry: each host subscribes as an NCA agent does and pushes its goal
 * states to its Alcor Control Agent over gRPC (docs/aca-bridge.md). As a sidecar
 * it serves one host (ALCOR_NCA_HOSTS=<hostId>); it can serve several.
 *
 * Environment: as services/nca/main.ts (NATS_URL, KAFKA_*, ALCOR_NCA_HOSTS,
 * ALCOR_NCA_CREDENTIALS, ALCOR_FLEET_ID, ALCOR_NCA_SHARD, …), and
 * ALCOR_ACA_ADDRESSES (`<hostId>=<host:port>,…`: each host's ACA; a host not
 * listed: its underlay IP, port ALCOR_ACA_PORT, default 50001);
 * ALCOR_ACA_LISTEN (`host:port` where each host's bridge serves RequestGoalStates
 * for its ACA, as Alcor's controller does on 9016; port 0: any free port, logged;
 * several hosts need 0; default: not served);
 * ALCOR_ACA_REPLY_TIMEOUT_MS (a push without reply this long: the ACA counts as
 * down; default 10000). With ALCOR_NCA_CREDENTIALS the process's own user
 * (NATS_NKEY_SEED_FILE) reads KV `hosts` for the neighbors' host IPs.
 */
import {
  createRegistry,
  objectCounters,
  runService,
  stageHistogram,
  type Logger,
} from '../../infra/index.js';
import { ConfigError, ID_PATTERN, numbersFromEnv, withEnvNames } from '../../shared/index.js';
import { fleetFromEnv, fleetMetrics } from '../nca/fleetService.js';
import { ACA_PORT, startAcaBridge } from './index.js';

/** `h1=10.0.0.1:50001,h2=…` → host → address. */
export function parseAcaAddresses(text: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of (text ?? '').split(',').map((s) => s.trim())) {
    if (item === '') continue;
    const m = /^([^=]+)=(.+:\d{1,5})$/.exec(item);
    if (!m || !ID_PATTERN.test(m[1]!))
      throw new ConfigError(
        'ALCOR_ACA_ADDRESSES',
        `${item.slice(0, 80)}: <hostId>=<host:port>, separated by commas`,
      );
    out.set(m[1]!, m[2]!);
  }
  return out;
}

async function main(log: Logger, env: NodeJS.ProcessEnv) {
  const fleet = await fleetFromEnv(env, log);
  const numbers = { ALCOR_ACA_PORT: 'port', ALCOR_ACA_REPLY_TIMEOUT_MS: 'replyTimeoutMs' } as const;
  const { port = ACA_PORT, replyTimeoutMs } = withEnvNames(numbers, () =>
    numbersFromEnv(env, numbers),
  );
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new ConfigError('ALCOR_ACA_PORT', 'a port from 1 to 65535');
  const addresses = parseAcaAddresses(env.ALCOR_ACA_ADDRESSES);
  const listen = env.ALCOR_ACA_LISTEN?.trim() || undefined;
  if (listen && !/^.+:\d{1,5}$/.test(listen))
    throw new ConfigError('ALCOR_ACA_LISTEN', `${listen.slice(0, 80)}: host:port`);
  if (listen && !listen.endsWith(':0') && fleet.hosts.length > 1)
    throw new ConfigError('ALCOR_ACA_LISTEN', 'several hosts: give port 0 (any free port each)');
  const registry = createRegistry('aca-bridge', fleet.fleetId);
  const stages = stageHistogram(registry, ['binding']);
  const bridge = await startAcaBridge({
    natsUrl: fleet.natsUrl,
    kafka: fleet.kafka,
    hosts: fleet.hosts,
    ...(fleet.reconnectSpreadMs === undefined
      ? {}
      : { reconnectSpreadMs: fleet.reconnectSpreadMs }),
    logger: log,
    fleetId: fleet.groupId,
    ...(fleet.credentials ? { hostCredentials: fleet.credentials } : {}),
    stage: (stage, binding, seconds) =>
      stages.observe({ stage, binding: `aca/${binding}` }, seconds),
    acaAddress: (h) => addresses.get(h.hostId) ?? `${h.underlayIp}:${port}`,
    ...(listen ? { listen: () => listen } : {}),
    ...(replyTimeoutMs ? { replyTimeoutMs } : {}),
  });
  for (const [hostId, b] of bridge.bridges)
    log.info(
      {
        hostId,
        aca: b.address,
        ...(b.requestAddress ? { requestGoalStates: b.requestAddress } : {}),
      },
      'bridging',
    );
  fleetMetrics(registry, bridge.fleet, (binding) => `aca/${binding}`);
  objectCounters(
    registry,
    'alcor_aca_bridge',
    {
      pushes: 'GoalStateV2 messages pushed to the ACAs and answered',
      fullPushes: 'FULL pushes after a connection to an ACA was lost',
      refused: 'Resources the ACAs refused (a status other than SUCCESS)',
      pushFailures: 'Pushes that failed (ACA unreachable, no reply in time)',
      restartRequests: 'RequestGoalStates AGENT_RESTARTED answered (a resync each)',
      onDemandRequests: 'RequestGoalStates ON_DEMAND answered',
    },
    () => [[{}, bridge.totals()]],
    [],
  );
  const timer = setInterval(
    () => log.info({ ...bridge.fleet.totals(), ...bridge.totals() }, 'aca-bridge totals'),
    fleet.statsMs,
  );
  timer.unref();
  return {
    registry,
    readiness: () => ({ nats: bridge.fleet.connected() || 'a fleet NATS connection is down' }),
    stop: async () => {
      clearInterval(timer);
      await bridge.stop();
    },
    describe: () => ({
      hosts: bridge.bridges.size,
      acas: [...bridge.bridges.values()].slice(0, 5).map((b) => b.address),
    }),
  };
}

await runService({
  name: 'aca-bridge',
  about: `Bridges hosts of the topology registry to their Alcor Control Agents (gRPC, Alcor's schema).
Environment: as nca (NATS_URL, KAFKA_*, ALCOR_NCA_HOSTS, ALCOR_FLEET_ID, ALCOR_NCA_SHARD);
ALCOR_ACA_ADDRESSES (hostId=host:port,...; default the host's underlay IP);
ALCOR_ACA_PORT (default 50001); ALCOR_ACA_LISTEN (host:port for RequestGoalStates);
ALCOR_ACA_REPLY_TIMEOUT_MS (default 10000).`,
  start: main,
});
