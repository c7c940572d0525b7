/**
 * A reproducible intent workload (many VPCs, hosts over clusters, every kind of
 * intent, some refused, some malformed) and the judge of what a controller did
 * with it: the pure decider replayed over the same INTENTS must give exactly the
 * commits EVENTS holds, and its projection exactly the goal states GOALSTATES holds.
 */
import { jetstream, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { createJetStreamIntentSource, readStreamRange } from '../../infra/index.js';
import {
  decodeEventMessage,
  bucketOf,
  prng,
  streams,
  subjects,
  type EventCommit,
  type HostRecord,
  type RecordedCommit,
  type TopologyPlace,
} from '../../shared/index.js';
import { vpc } from '../../actors/index.js';

const { commandFor, vpcDecider } = vpc;

export { prng } from '../../shared/index.js';

export function fleet(
  clusters: number,
  hostsPerCluster: number,
  tag = 'w',
  options: {
    /** Clusters are dealt over this many regions (`<regionPrefix><n>`). */
    regions?: number;
    regionPrefix?: string;
    /** The binding of the h-th host of a cluster (default JetStream). */
    binding?: (h: number) => HostRecord['binding'];
  } = {},
): HostRecord[] {
  const hosts: HostRecord[] = [];
  const regions = options.regions ?? 1;
  for (let c = 0; c < clusters; c++) {
    for (let h = 0; h < hostsPerCluster; h++) {
      hosts.push({
        hostId: `${tag}-c${c}-h${h}`,
        region: `${options.regionPrefix ?? 'r'}${(c % regions) + 1}`,
        az: `az${c % 3}`,
        dc: `dc${c % 2}`,
        cluster: `c${c}`,
        underlayIp: `172.${16 + (c >> 8)}.${c & 255}.${h + 1}`,
        binding: options.binding?.(h) ?? { type: 'jetstream' },
      });
    }
  }
  return hosts;
}

/**
 * A VPC (10.0.0.0/16), its subnet `s1` (10.0.1.0/24) and a port `p<i>` on each
 * host given: intent ids `<vpc>-vpc`, `<vpc>-subnet`, `<vpc>-p<i>`.
 */
export function vpcWithPorts(vpcId: string, hostIds: readonly string[]) {
  return [
    { id: `${vpcId}-vpc`, kind: 'vpc.create', vpcId, spec: { cidr: '10.0.0.0/16' } },
    {
      id: `${vpcId}-subnet`,
      kind: 'subnet.create',
      vpcId,
      spec: { subnetId: 's1', cidr: '10.0.1.0/24', gatewayIp: '10.0.1.1' },
    },
    ...hostIds.map((hostId, i) => ({
      id: `${vpcId}-p${i}`,
      kind: 'port.create',
      vpcId,
      spec: { portId: `p${i}`, subnetId: 's1', hostId },
    })),
  ];
}

/** One VPC's intents, in the order they must be published (raw: some are malformed). */
export function vpcScript(
  vpcId: string,
  length: number,
  hosts: HostRecord[],
  seed: number,
  /** Hosts the VPC's ports are drawn from (a VPC spans a few clusters, like a real tenant). */
  spread = 6,
): unknown[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const own = Array.from({ length: spread }, () => pick(hosts).hostId);
  let n = 0;
  const id = () => `${vpcId}-i${++n}`;
  const out: unknown[] = [
    { id: id(), kind: 'vpc.create', vpcId, spec: { cidr: '10.0.0.0/16' } },
    {
      id: id(),
      kind: 'subnet.create',
      vpcId,
      spec: { subnetId: 's1', cidr: '10.0.1.0/24', gatewayIp: '10.0.1.1' },
    },
    {
      id: id(),
      kind: 'subnet.create',
      vpcId,
      spec: { subnetId: 's2', cidr: '10.0.2.0/24', gatewayIp: '10.0.2.1' },
    },
    {
      id: id(),
      kind: 'sg.create',
      vpcId,
      spec: {
        sgId: 'g1',
        rules: [{ direction: 'ingress', protocol: 'tcp', portMin: 22, portMax: 22 }],
      },
    },
  ];
  let ports = 0;
  while (out.length < length) {
    const r = rnd();
    const port = `p${Math.floor(rnd() * Math.max(1, ports + 2))}`;
    if (r < 0.45) {
      ports += 1;
      out.push({
        id: id(),
        kind: 'port.create',
        vpcId,
        spec: {
          portId: `p${ports}`,
          subnetId: rnd() < 0.5 ? 's1' : 's2',
          hostId: pick(own),
          ...(rnd() < 0.3 ? { securityGroupIds: ['g1'] } : {}),
        },
      });
    } else if (r < 0.6) {
      out.push({ id: id(), kind: 'port.update', vpcId, spec: { portId: port, hostId: pick(own) } });
    } else if (r < 0.68) {
      out.push({ id: id(), kind: 'port.delete', vpcId, spec: { portId: port } });
    } else if (r < 0.76) {
      out.push({
        id: id(),
        kind: 'sg.update',
        vpcId,
        spec: {
          sgId: 'g1',
          rules: [{ direction: 'ingress', protocol: 'tcp', portMin: 1 + (n % 999), portMax: 1000 }],
        },
      });
    } else if (r < 0.84) {
      out.push({
        id: id(),
        kind: 'route.set',
        vpcId,
        spec: { destination: pick(['0.0.0.0/0', '192.168.0.0/16']), nextHop: '10.0.1.254' },
      });
    } else if (r < 0.9) {
      // Refused by a rule: a port on a subnet that does not exist.
      out.push({
        id: id(),
        kind: 'port.create',
        vpcId,
        spec: { portId: `x${n}`, subnetId: 'nope', hostId: pick(own) },
      });
    } else if (r < 0.95) {
      // Malformed: a bad field.
      out.push({
        id: id(),
        kind: 'port.create',
        vpcId,
        spec: { portId: 'bad id!', subnetId: 's1' },
      });
    } else {
      out.push({ id: id(), kind: 'port.explode', vpcId, spec: {} });
    }
  }
  return out;
}

const encoder = new TextEncoder();

/**
 * Publishes the scripts from `connections` connections at once (VPCs dealt out
 * round-robin), each keeping its VPCs' order, with up to `window` publishes in flight.
 */
export async function publishScripts(
  connections: NatsConnection[],
  scripts: Map<string, unknown[]>,
  window = 512,
  /** A steady load: at most this many intents per second over all connections. */
  perSecond = Infinity,
): Promise<number> {
  const started = performance.now();
  const lanePace = perSecond / connections.length / 1000;
  const lanes: Array<Array<[string, unknown[]]>> = connections.map(() => []);
  [...scripts].forEach((entry, i) => lanes[i % connections.length]!.push(entry));
  let total = 0;
  await Promise.all(
    lanes.map(async (lane, i) => {
      const js = jetstream(connections[i]!);
      const inFlight = new Set<Promise<unknown>>();
      const longest = Math.max(0, ...lane.map(([, s]) => s.length));
      let sent = 0;
      for (let k = 0; k < longest; k++) {
        for (const [vpcId, script] of lane) {
          const intent = script[k];
          if (intent === undefined) continue;
          const id = (intent as { id: string }).id;
          const p = js.publish(subjects.intent(vpcId), encoder.encode(JSON.stringify(intent)), {
            msgID: id,
          });
          inFlight.add(p);
          p.then(
            () => inFlight.delete(p),
            () => inFlight.delete(p),
          );
          total += 1;
          sent += 1;
          if (inFlight.size >= window) await Promise.race(inFlight);
          const ahead = sent / lanePace - (performance.now() - started);
          if (ahead > 5) await new Promise((r) => setTimeout(r, ahead));
        }
      }
      await Promise.all(inFlight);
    }),
  );
  return total;
}

export async function streamCount(jsm: JetStreamManager, stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.messages;
}

export interface StreamMessage {
  subject: string;
  seq: number;
  msgId: string | undefined;
  /** The controller run that wrote it (`Alcor-Writer`), if any. */
  writer: string | undefined;
  time: Date;
  data: Uint8Array;
}

/** Every message of a stream (or one subject of it): subject, sequence, msgId, writer, body. */
export async function readStream(
  nc: NatsConnection,
  stream: string,
  filter?: string,
): Promise<StreamMessage[]> {
  const out: StreamMessage[] = [];
  for await (const m of readStreamRange(nc, stream, filter ? { filter } : {})) {
    out.push({
      subject: m.subject,
      seq: m.seq,
      msgId: m.msgId,
      writer: m.headers?.get('Alcor-Writer') || undefined,
      time: m.time,
      data: m.data,
    });
  }
  return out;
}

/** A commit of EVENTS with its revision (the commits of a group message share it), and its message. */
export interface CommitInLog {
  revision: number;
  commit: EventCommit;
  message: StreamMessage;
}

/** Every commit in EVENTS (or one VPC's), groups unfolded; a message that is not a commit is skipped. */
export async function readCommits(nc: NatsConnection, vpcId?: string): Promise<CommitInLog[]> {
  const out: CommitInLog[] = [];
  for (const m of await readStream(nc, streams.events, vpcId ? subjects.event(vpcId) : undefined)) {
    const decoded = decodeEventMessage(m.subject.slice(m.subject.indexOf('.') + 1), m.data);
    if (decoded.ok)
      for (const commit of decoded.value) out.push({ revision: m.seq, commit, message: m });
  }
  return out;
}

/** The number of commits in EVENTS: one per decided intent. */
export async function commitCount(nc: NatsConnection): Promise<number> {
  return (await readCommits(nc)).length;
}

/** JSON with object keys in sorted order: equal values give equal text whatever the field order. */
function sortedJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** A commit as the pure decider makes it: without what the owner adds when appending (`published`). */
export function pureCommit(commit: EventCommit): EventCommit {
  const { published: _published, ...rest } = commit;
  return rest;
}

export interface Verdict {
  vpcs: number;
  intents: number;
  commits: number;
  accepted: number;
  rejected: number;
  /** Goal-state msgIds the pure projection expects. */
  expectedGoalStates: Set<string>;
  states: Map<string, vpc.VpcState>;
}

/**
 * Replays each VPC's INTENTS through the pure decider and checks, commit by commit,
 * that EVENTS holds exactly what it decides (same intent, cursor, events), in
 * order, and nothing else. Throws on the first difference.
 */
export async function judge(
  nc: NatsConnection,
  vpcIds: readonly string[],
  hosts: readonly HostRecord[],
): Promise<Verdict> {
  const places = new Map<string, TopologyPlace>(hosts.map((h) => [h.hostId, h]));
  const lookupHost = (hostId: string) => {
    const h = places.get(hostId);
    return h ? { region: h.region, az: h.az, dc: h.dc, cluster: h.cluster } : undefined;
  };
  const source = await createJetStreamIntentSource(nc);
  const byVpc = new Map<string, RecordedCommit[]>();
  for (const { revision, commit } of await readCommits(nc)) {
    const list = byVpc.get(commit.vpcId) ?? [];
    list.push({ revision, commit });
    byVpc.set(commit.vpcId, list);
  }
  const verdict: Verdict = {
    vpcs: vpcIds.length,
    intents: 0,
    commits: 0,
    accepted: 0,
    rejected: 0,
    expectedGoalStates: new Set(),
    states: new Map(),
  };
  for (const vpcId of vpcIds) {
    const bucket = bucketOf(vpcId);
    const stored = [];
    for (let after = 0; ;) {
      const batch = await source.read(bucket, vpcId, after, 1000);
      if (batch.length === 0) break;
      stored.push(...batch);
      after = batch.at(-1)!.seq;
    }
    const recorded = byVpc.get(vpcId) ?? [];
    let state = vpc.initialState(vpcId);
    let k = 0;
    // One goal state per target and revision (vpc.groupMessages, as the owner makes them).
    let group: { revision: number; perCommit: vpc.ProjectedMessage[][] } | undefined;
    const closeGroup = (
      g: { revision: number; perCommit: vpc.ProjectedMessage[][] },
      at: vpc.VpcState,
    ): void => {
      for (const m of vpc.groupMessages(at, g.perCommit, g.revision, bucket))
        verdict.expectedGoalStates.add(m.msgId);
    };
    for (const s of stored) {
      verdict.intents += 1;
      const { command } = commandFor(s, lookupHost);
      const decision = vpcDecider.decide(command, state);
      if (decision.type === 'answer') continue;
      const actual = recorded[k++];
      if (!actual) throw new Error(`${vpcId}: no commit in EVENTS for INTENTS seq ${s.seq}`);
      if (sortedJson(pureCommit(actual.commit)) !== sortedJson(decision.commit)) {
        throw new Error(
          `${vpcId} at seq ${s.seq}: EVENTS holds ${JSON.stringify(actual.commit)}, the pure decider gives ${JSON.stringify(decision.commit)}`,
        );
      }
      // A group's goal states are made at its end, from the state as of its end.
      if (group && group.revision !== actual.revision) {
        closeGroup(group, state);
        group = undefined;
      }
      state = vpc.evolve(state, actual);
      group ??= { revision: actual.revision, perCommit: [] };
      group.perCommit.push(vpc.project(state, actual, bucket));
      verdict.commits += 1;
      if (actual.commit.events[0]?.type === 'IntentRejected') verdict.rejected += 1;
      else verdict.accepted += 1;
    }
    if (group) closeGroup(group, state);
    if (k !== recorded.length) {
      throw new Error(`${vpcId}: EVENTS holds ${recorded.length - k} commits no intent explains`);
    }
    verdict.states.set(vpcId, state);
  }
  return verdict;
}
