/**
 * ACA bridges (issue 26): hosts whose dataplane is an Alcor Control Agent. Each
 * host subscribes exactly as our agent does (a fleet of HostAgents: JetStream or
 * Kafka binding, resync on start and on gaps) and pushes its goal states to its
 * ACA in Alcor's schema over gRPC (hostBridge.ts). One process may serve one host
 * (a sidecar) or several.
 */
import { connectNats, createHostDirectory, type HostDirectory } from '../../infra/index.js';
import type { HostRecord } from '../../shared/index.js';
import { nca, vpc } from '../../actors/index.js';
import { startFleet, type Fleet, type FleetOptions } from '../nca/fleet.js';
import { AcaHostBridge, emptyBridgeStats, type AcaBridgeStats } from './hostBridge.js';
import { comparable, type TestAca } from './testAca.js';

export { AcaHostBridge, type AcaBridgeStats } from './hostBridge.js';
export {
  TestAca,
  forkTestAcas,
  type TestAcaOptions,
  type TestAcaProcess,
  type TestAcaStats,
} from './testAca.js';

/** The port an ACA listens on. */
export const ACA_PORT = 50001;

export interface AcaBridgeOptions extends Omit<FleetOptions, 'dataplane' | 'failOp' | 'applyLate'> {
  /** Each host's ACA (`host:port`); default its underlay IP, port 50001. */
  acaAddress?: (host: HostRecord) => string;
  /** Where each host's bridge serves RequestGoalStates (`host:port`, port 0: any); none by default. */
  listen?: (host: HostRecord) => string | undefined;
  replyTimeoutMs?: number;
  /** Observes each push: its round trip in ms and the resources in it. */
  onPush?: (ms: number, resources: number) => void;
}

export interface AcaBridge {
  fleet: Fleet;
  bridges: ReadonlyMap<string, AcaHostBridge>;
  /** Sum of the bridges' counters. */
  totals: () => AcaBridgeStats;
  /** The underlay IPs of the topology (neighbors name their host's). */
  hostIp: (hostId: string) => string | undefined;
  stop: () => Promise<void>;
}

export async function startAcaBridge(options: AcaBridgeOptions): Promise<AcaBridge> {
  // The process's own user (not a host's) reads the topology.
  const nc = await connectNats(options.natsUrl, { name: `alcor-aca-bridge-${options.fleetId}` });
  let directory: HostDirectory | undefined;
  try {
    directory = await createHostDirectory(nc, {
      onInvalid: (hostId, error) =>
        options.logger.warn({ hostId, ...error }, 'host record ignored'),
    });
  } catch (err) {
    // Neighbors then go out without their host's IP (the bridge's user may not read KV hosts).
    options.logger.warn({ err }, 'the topology is not readable: neighbors carry no host IP');
  }
  const hostIp = (hostId: string): string | undefined => directory?.record(hostId)?.underlayIp;
  const bridges = new Map<string, AcaHostBridge>();
  const fleet = await startFleet({
    ...options,
    dataplane: (agent) => {
      const record = agent.record;
      const listen = options.listen?.(record);
      const bridge = new AcaHostBridge(agent, {
        address: options.acaAddress?.(record) ?? `${record.underlayIp}:${ACA_PORT}`,
        hostIp,
        logger: options.logger,
        ...(listen ? { listen } : {}),
        ...(options.replyTimeoutMs ? { replyTimeoutMs: options.replyTimeoutMs } : {}),
        ...(options.onPush ? { onPush: options.onPush } : {}),
      });
      bridges.set(record.hostId, bridge);
      return bridge;
    },
  });
  await Promise.all([...bridges.values()].map((b) => b.start()));
  options.logger.info({ hosts: bridges.size }, 'ACA bridges started');
  return {
    fleet,
    bridges,
    hostIp,
    totals: () => {
      const sum = emptyBridgeStats();
      for (const b of bridges.values())
        for (const k of Object.keys(sum) as Array<keyof AcaBridgeStats>) sum[k] += b.stats[k];
      return sum;
    },
    stop: async () => {
      await fleet.stop();
      await directory?.stop();
      await nc.close().catch(() => undefined);
    },
  };
}

export interface AcaDivergence {
  hostId: string;
  /** Alcor resources (`<TYPE>/<id>`) the log says the ACA must hold and it lacks. */
  missing: string[];
  extra: string[];
  /** Held with another configuration. */
  different: string[];
}

/**
 * The convergence oracle for an ACA: the Alcor resources the log says the host
 * must hold (its resources from every VPC's state, translated as the bridge
 * translates them) against what the ACA programmed. Empty: converged.
 */
export function acaDivergence(
  states: Iterable<vpc.VpcState>,
  record: HostRecord,
  aca: Pick<TestAca, 'model'>,
  hostIp: (hostId: string) => string | undefined,
): AcaDivergence | undefined {
  const model = nca.emptyHostModel(record.hostId);
  for (const state of states) {
    const ops = vpc.hostResources(state, record.hostId);
    if (ops.length > 0)
      nca.apply(model, {
        vpcId: state.vpcId,
        bucket: 0,
        revision: Math.max(1, state.revision),
        mode: 'full',
        target: record.hostId,
        ops,
      });
  }
  const host = { hostId: record.hostId, underlayIp: record.underlayIp, hostIp };
  const want = new Map<string, string>();
  for (const resources of nca.allAlcorResources(model, host).values())
    for (const [key, r] of resources) want.set(key, comparable(r.config));
  const out: AcaDivergence = { hostId: record.hostId, missing: [], extra: [], different: [] };
  for (const [key, config] of want) {
    const held = aca.model.get(key);
    if (!held) out.missing.push(key);
    else if (comparable(held.config) !== config) out.different.push(key);
  }
  for (const key of aca.model.keys()) if (!want.has(key)) out.extra.push(key);
  return out.missing.length + out.extra.length + out.different.length > 0 ? out : undefined;
}
