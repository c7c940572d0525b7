/**
 * A large VPC written straight into EVENTS through the decider, as the controller's
 * lane writes it (the command handler: decide, append with the expected revision,
 * groups of commits), and its snapshot saved — without publishing a goal state for
 * each host as it joins (through the sync API, a 100k-port VPC over 5,000 hosts
 * would first send thousands of growing full states). The owner that takes the VPC
 * loads the snapshot; the oracle folds the same EVENTS.
 *
 * The commits' cursors stand for INTENTS sequences 1…n: INTENTS is moved past them
 * (its next sequence is n + 1), or the owner would take the next intents as already
 * handled. Seed before a controller owns the VPC.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  createCommandHandler,
  createJetStreamEventLog,
  createKvSnapshotStore,
  payloadRoom,
} from '../../infra/index.js';
import { vpc } from '../../actors/index.js';
import { streams, type HostRecord, type VpcIntent } from '../../shared/index.js';

export interface SeededVpc {
  state: vpc.VpcState;
  /** EVENTS messages written (groups of commits). */
  messages: number;
  /** The last cursor used: INTENTS continues after it. */
  cursor: number;
  seconds: number;
}

/** Commits per EVENTS message at most (the contract allows 256 in a group). */
const GROUP_MAX = 256;
/** A port's commit takes about 340 bytes (docs/performance.md): room for more. */
const COMMIT_BYTES = 512;

/**
 * `ports` ports spread round-robin over `hosts`, in one subnet (10.0.0.0/14) with
 * one security group, ids `p0…`; then the snapshot, and INTENTS moved past the cursors.
 */
export async function seedVpc(
  nc: NatsConnection,
  vpcId: string,
  hosts: readonly HostRecord[],
  ports: number,
): Promise<SeededVpc> {
  const began = performance.now();
  const places = new Map(
    hosts.map((h) => [h.hostId, { region: h.region, az: h.az, dc: h.dc, cluster: h.cluster }]),
  );
  const log = await createJetStreamEventLog(nc, { writer: () => 'seed/1' });
  const handler = createCommandHandler({ log, decider: vpc.vpcDecider });
  const at = new Date().toISOString();
  let cursor = 0;
  const command = (id: string, kind: VpcIntent['kind'], spec: unknown): vpc.VpcCommand => ({
    type: 'decide',
    input: { intent: { id, kind, vpcId, spec } as VpcIntent, cursor: ++cursor, at },
    hosts: places,
  });
  // Groups of commits well under the server's max_payload.
  const group = Math.max(1, Math.min(GROUP_MAX, Math.floor(payloadRoom(nc) / 2 / COMMIT_BYTES)));
  let state = vpc.initialState(vpcId);
  let messages = 0;
  const write = async (commands: vpc.VpcCommand[]) => {
    const handled = await handler.handleGroup(vpcId, commands, state);
    const refused = handled.outcomes.find(
      (o) => o.type !== 'committed' || o.commit.events.some((e) => e.type === 'IntentRejected'),
    );
    if (refused) throw new Error(`seeding ${vpcId}: ${JSON.stringify(refused).slice(0, 400)}`);
    state = handled.state;
    messages += 1;
  };
  await write([
    command(`${vpcId}-vpc`, 'vpc.create', { cidr: '10.0.0.0/8' }),
    command(`${vpcId}-subnet`, 'subnet.create', {
      subnetId: 's1',
      cidr: '10.0.0.0/14',
      gatewayIp: '10.0.0.1',
    }),
    command(`${vpcId}-sg`, 'sg.create', {
      sgId: 'web',
      rules: [{ direction: 'ingress', protocol: 'tcp', portMin: 443, portMax: 443 }],
    }),
  ]);
  for (let i = 0; i < ports; i += group) {
    const commands: vpc.VpcCommand[] = [];
    for (let p = i; p < Math.min(ports, i + group); p++) {
      commands.push(
        command(`${vpcId}-p${p}`, 'port.create', {
          portId: `p${p}`,
          subnetId: 's1',
          hostId: hosts[p % hosts.length]!.hostId,
          securityGroupIds: ['web'],
        }),
      );
    }
    await write(commands);
  }
  const snapshots = await createKvSnapshotStore(nc);
  await snapshots.save(vpcId, state.revision, JSON.stringify(vpc.toSnapshot(state)));
  await moveIntentsPast(nc, cursor);
  return { state, messages, cursor, seconds: (performance.now() - began) / 1000 };
}

/** INTENTS' next sequence becomes `cursor + 1` (a purge up to it). */
async function moveIntentsPast(nc: NatsConnection, cursor: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const before = await jsm.streams.info(streams.intents);
  if (before.state.last_seq > 0)
    throw new Error(`INTENTS holds ${before.state.messages} intents: seed before any intent`);
  await jsm.streams.purge(streams.intents, { seq: cursor + 1 });
  const after = await jsm.streams.info(streams.intents);
  if (after.state.first_seq !== cursor + 1)
    throw new Error(`INTENTS starts at ${after.state.first_seq}, not ${cursor + 1}`);
}
