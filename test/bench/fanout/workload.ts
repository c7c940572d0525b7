/**
 * The MQ evaluation's workload (issue 8): a seeded topology, VPCs whose sizes
 * follow a Zipf law, and an intent mix, run through the VPC actor's own pure
 * decide → evolve → project. What comes out is what every delivery mode is fed:
 * per intent, the goal-state messages the controller would emit (a unicast to a
 * host, or a multicast to a cluster), their bytes, and the hosts that need each.
 *
 * Two phases: the build (VPCs, subnets, groups, their first ports) is the
 * starting state — each host holds its VPCs as if it had just resynced — and the
 * measured phase is the intent mix: port churn (create, delete), migrations
 * (a port moving host), security-group rule changes, and VPC bursts (a new VPC and
 * its ports at once).
 */
import {
  clusterKey,
  prng,
  type HostRecord,
  type RecordedCommit,
  type TopologyPlace,
  type VpcIntent,
} from '../../../shared/index.js';
import { vpc } from '../../../actors/index.js';

export interface Shape {
  hosts: number;
  hostsPerCluster: number;
  clustersPerDc: number;
  dcsPerAz: number;
  azsPerRegion: number;
  /** VPCs at the start of the measured phase. */
  vpcs: number;
  /** Zipf exponent of VPC sizes (ports): the k-th VPC has maxPorts / k^zipf. */
  zipf: number;
  maxPorts: number;
  /** Intents in the measured phase (a burst counts each of its intents). */
  intents: number;
  /** Shares of the measured phase (normalised). */
  mix: { churn: number; migrate: number; sg: number; burst: number };
  /** Ports of a burst VPC. */
  burstPorts: number;
  seed: number;
}

export const DEFAULT_SHAPE: Omit<Shape, 'hosts'> = {
  hostsPerCluster: 40,
  clustersPerDc: 5,
  dcsPerAz: 1,
  azsPerRegion: 3,
  vpcs: 0, // 0: hosts / 5
  zipf: 1.1,
  maxPorts: 0, // 0: min(2,000, hosts)
  intents: 3000,
  mix: { churn: 0.55, migrate: 0.2, sg: 0.15, burst: 0.1 },
  burstPorts: 40,
  seed: 42,
};

/** One goal-state message of an intent, as each mode must deliver it. */
export interface Delivery {
  vpcId: string;
  revision: number;
  /** A host (unicast) or a cluster key (multicast). */
  target: string;
  unicast: boolean;
  /** The target's place (the host's, or the cluster's). */
  place: TopologyPlace;
  /** The product's JetStream subject (`gs…<host>` or `gsm…<vpc>`). */
  subject: string;
  data: Uint8Array;
  /**
   * Hosts that need it: the unicast host, or the VPC's hosts in the cluster but
   * those sent their full state in the same commit (it holds the change already).
   */
  recipients: readonly string[];
  /** A full state that makes the host a member of the VPC (it follows its multicast). */
  joins: boolean;
  /** The host's last port of the VPC is gone (it stops following the multicast). */
  leaves: boolean;
}

export interface FanoutWorkload {
  shape: Shape;
  hosts: HostRecord[];
  /** Cluster key → its hosts. */
  clusters: Map<string, HostRecord[]>;
  /** Host → the VPCs it holds at the start of the measured phase. */
  holds: Map<string, Set<string>>;
  /** Per intent of the measured phase, its deliveries (empty: refused or no host). */
  intents: Delivery[][];
  stats: {
    vpcs: number;
    ports: number;
    largestVpc: number;
    messages: number;
    bytes: number;
    unicasts: number;
    multicasts: number;
    refused: number;
    /**
     * The most multicast messages one commit sent, per cluster hosting its VPC
     * (before or after the commit): at most 1 is the design's promise.
     */
    maxMulticastsPerCluster: number;
  };
}

const encoder = new TextEncoder();

export function topology(shape: Shape): HostRecord[] {
  const hosts: HostRecord[] = [];
  for (let i = 0; i < shape.hosts; i++) {
    const c = Math.floor(i / shape.hostsPerCluster);
    const dc = Math.floor(c / shape.clustersPerDc);
    const az = Math.floor(dc / shape.dcsPerAz);
    const region = Math.floor(az / shape.azsPerRegion);
    hosts.push({
      hostId: `n${i}`,
      region: `r${region}`,
      az: `a${az}`,
      dc: `d${dc}`,
      cluster: `c${c}`,
      underlayIp: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      binding: { type: 'jetstream' },
    });
  }
  return hosts;
}

interface LiveVpc {
  vpcId: string;
  state: vpc.VpcState;
  /** Clusters (keys) its ports are placed in. */
  clusters: string[];
  ports: string[];
  nextPort: number;
  cursor: number;
}

/** Builds the workload; pure and deterministic for a shape (seed included). */
export function buildWorkload(input: Partial<Shape> & { hosts: number }): FanoutWorkload {
  const shape: Shape = { ...DEFAULT_SHAPE, ...input };
  if (shape.vpcs === 0) shape.vpcs = Math.max(1, Math.floor(shape.hosts / 5));
  if (shape.maxPorts === 0) shape.maxPorts = Math.min(2000, shape.hosts);
  const rnd = prng(shape.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const hosts = topology(shape);
  const places = new Map<string, TopologyPlace>();
  const clusters = new Map<string, HostRecord[]>();
  const byRegion = new Map<string, string[]>();
  for (const h of hosts) {
    places.set(h.hostId, h);
    const key = clusterKey(h);
    if (!clusters.has(key)) {
      clusters.set(key, []);
      byRegion.set(h.region, [...(byRegion.get(h.region) ?? []), key]);
    }
    clusters.get(key)!.push(h);
  }
  const regions = [...byRegion.keys()];
  const lookupHost = (hostId: string): TopologyPlace | undefined => places.get(hostId);
  let sequence = 0;
  const vpcs: LiveVpc[] = [];
  let refused = 0;
  let maxMulticastsPerCluster = 0;

  /** Decide, record, evolve, project one intent of `v`; its deliveries. */
  const send = (v: LiveVpc, intent: VpcIntent): Delivery[] => {
    v.cursor += 1;
    const decision = vpc.decide(
      { intent, cursor: v.cursor, at: '2026-11-25T00:00:00.000Z' },
      v.state,
      {
        lookupHost,
      },
    );
    if (decision.type !== 'commit') return [];
    if (decision.commit.events[0]?.type === 'IntentRejected') {
      refused += 1;
      return [];
    }
    sequence += 1;
    const recorded: RecordedCommit = { revision: sequence, commit: decision.commit };
    const hostedBefore = new Set(v.state.clusters.keys());
    v.state = vpc.evolve(v.state, recorded);
    const projected = vpc.project(v.state, recorded, 0);
    const hosting = new Set([...hostedBefore, ...v.state.clusters.keys()]).size;
    const multicasts = projected.filter(({ message }) => message.target.includes('.')).length;
    if (multicasts > 0)
      maxMulticastsPerCluster = Math.max(maxMulticastsPerCluster, multicasts / hosting);
    // A host sent its full state in this commit has the commit's multicast in it.
    const full = new Set(
      projected
        .filter(({ message }) => message.mode === 'full')
        .map(({ message }) => message.target),
    );
    return projected.map(({ subject, message }) => {
      const unicast = !message.target.includes('.');
      const place = unicast ? places.get(message.target)! : placeOfCluster(message.target);
      const recipients = unicast
        ? [message.target]
        : [...(v.state.clusters.get(message.target)?.hosts ?? [])].filter((h) => !full.has(h));
      return {
        vpcId: v.vpcId,
        revision: message.revision,
        target: message.target,
        unicast,
        place,
        subject,
        data: encoder.encode(JSON.stringify(message)),
        recipients,
        joins: unicast && message.mode === 'full' && v.state.hosts.has(message.target),
        leaves: unicast && !v.state.hosts.has(message.target),
      };
    });
  };
  const placeOfCluster = (key: string): TopologyPlace => {
    const h = clusters.get(key)![0]!;
    return { region: h.region, az: h.az, dc: h.dc, cluster: h.cluster };
  };

  let intentCounter = 0;
  const intent = <K extends VpcIntent['kind']>(
    v: LiveVpc,
    kind: K,
    spec: Extract<VpcIntent, { kind: K }>['spec'],
  ): VpcIntent => ({ id: `i${++intentCounter}`, kind, vpcId: v.vpcId, spec }) as VpcIntent;

  const hostIn = (v: LiveVpc): string => pick(clusters.get(pick(v.clusters))!).hostId;

  /** A new VPC of `ports` ports: its intents' deliveries, one list per intent. */
  const createVpc = (ports: number): Delivery[][] => {
    const n = vpcs.length;
    const region = pick(regions);
    const inRegion = byRegion.get(region)!;
    const span = Math.min(inRegion.length, Math.max(1, Math.ceil(ports / 25)));
    const start = Math.floor(rnd() * inRegion.length);
    const v: LiveVpc = {
      vpcId: `v${n}`,
      state: vpc.initialState(`v${n}`),
      clusters: Array.from({ length: span }, (_, i) => inRegion[(start + i) % inRegion.length]!),
      ports: [],
      nextPort: 0,
      cursor: 0,
    };
    vpcs.push(v);
    const out: Delivery[][] = [
      send(v, intent(v, 'vpc.create', { cidr: '10.0.0.0/8' })),
      send(
        v,
        intent(v, 'subnet.create', { subnetId: 's1', cidr: '10.0.0.0/12', gatewayIp: '10.0.0.1' }),
      ),
      send(
        v,
        intent(v, 'sg.create', {
          sgId: 'g1',
          rules: [{ direction: 'ingress', protocol: 'tcp', portMin: 22, portMax: 22 }],
        }),
      ),
    ];
    for (let p = 0; p < ports; p++) out.push(addPort(v));
    return out;
  };
  const addPort = (v: LiveVpc): Delivery[] => {
    const portId = `p${v.nextPort++}`;
    v.ports.push(portId);
    return send(
      v,
      intent(v, 'port.create', {
        portId,
        subnetId: 's1',
        hostId: hostIn(v),
        ...(rnd() < 0.5 ? { securityGroupIds: ['g1'] } : {}),
      }),
    );
  };

  // The build: VPC sizes by Zipf rank.
  for (let k = 1; k <= shape.vpcs; k++) {
    createVpc(Math.max(1, Math.round(shape.maxPorts / k ** shape.zipf)));
  }
  const holds = new Map<string, Set<string>>(hosts.map((h) => [h.hostId, new Set<string>()]));
  for (const v of vpcs) for (const hostId of v.state.hosts.keys()) holds.get(hostId)!.add(v.vpcId);
  const buildPorts = vpcs.reduce((n, v) => n + v.ports.length, 0);

  // The measured phase. VPCs are picked by their size (a busy tenant changes more).
  const weights = vpcs.map((v) => v.ports.length);
  const total = weights.reduce((a, b) => a + b, 0);
  const pickVpc = (): LiveVpc => {
    let r = rnd() * total;
    for (let i = 0; i < weights.length; i++) if ((r -= weights[i]!) < 0) return vpcs[i]!;
    return vpcs[vpcs.length - 1]!;
  };
  const mixTotal = shape.mix.churn + shape.mix.migrate + shape.mix.sg + shape.mix.burst;
  const intents: Delivery[][] = [];
  while (intents.length < shape.intents) {
    const r = rnd() * mixTotal;
    const v = pickVpc();
    if (r < shape.mix.churn) {
      if (v.ports.length > 1 && rnd() < 0.45) {
        const at = Math.floor(rnd() * v.ports.length);
        const portId = v.ports[at]!;
        v.ports.splice(at, 1);
        intents.push(send(v, intent(v, 'port.delete', { portId })));
      } else intents.push(addPort(v));
    } else if (r < shape.mix.churn + shape.mix.migrate) {
      if (v.ports.length === 0) continue;
      intents.push(send(v, intent(v, 'port.update', { portId: pick(v.ports), hostId: hostIn(v) })));
    } else if (r < shape.mix.churn + shape.mix.migrate + shape.mix.sg) {
      intents.push(
        send(
          v,
          intent(v, 'sg.update', {
            sgId: 'g1',
            rules: [
              {
                direction: 'ingress',
                protocol: 'tcp',
                portMin: 1 + (intents.length % 1000),
                portMax: 1024,
              },
            ],
          }),
        ),
      );
    } else {
      for (const d of createVpc(shape.burstPorts)) {
        if (intents.length < shape.intents) intents.push(d);
      }
    }
  }

  let messages = 0;
  let bytes = 0;
  let unicasts = 0;
  for (const list of intents) {
    for (const d of list) {
      messages += 1;
      bytes += d.data.length;
      if (d.unicast) unicasts += 1;
    }
  }
  return {
    shape,
    hosts,
    clusters,
    holds,
    intents,
    stats: {
      vpcs: vpcs.length,
      ports: buildPorts,
      largestVpc: Math.max(...vpcs.map((v) => v.ports.length)),
      messages,
      bytes,
      unicasts,
      multicasts: messages - unicasts,
      refused,
      maxMulticastsPerCluster,
    },
  };
}

/** Per host, how many deliveries the first `intents` intents need. */
export function neededBy(workload: FanoutWorkload, intents: number): Map<string, number> {
  const needed = new Map<string, number>(workload.hosts.map((h) => [h.hostId, 0]));
  for (const list of workload.intents.slice(0, intents))
    for (const d of list) for (const h of d.recipients) needed.set(h, needed.get(h)! + 1);
  return needed;
}
