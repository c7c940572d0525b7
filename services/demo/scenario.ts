/**
 * The demo's scenario (`demo/scenario.yaml`): the shape of a topology and of a
 * tenants' workload, expanded deterministically (a seeded PRNG) into host records
 * and intents. Each VPC's life: created, subnets, security groups, ports over a
 * few clusters, routes; then migrations, deletions, a rule change; and some
 * mistakes that must be refused, each with the reason the decider must give.
 */
import { z } from 'zod';
import { ID_PATTERN, prng, type HostRecord } from '../../shared/index.js';

const binding = z.string().regex(/^(jetstream|kafka:[a-z0-9]{1,16})$/);

export const ScenarioSchema = z.strictObject({
  seed: z.number().int().default(7),
  topology: z.strictObject({
    regions: z.array(z.string().regex(ID_PATTERN)).min(1).max(16),
    clusters: z.number().int().min(1).max(700),
    hosts: z.number().int().min(1).max(100_000),
    bindings: z.array(binding).min(1),
  }),
  workload: z.strictObject({
    vpcs: z.number().int().min(1).max(100_000),
    subnets: z.number().int().min(1).max(200),
    securityGroups: z.number().int().min(1).max(50),
    ports: z.number().int().min(1).max(10_000),
    clustersPerVpc: z.number().int().min(1).max(100),
    routes: z.number().int().min(0).max(200),
    migrate: z.number().min(0).max(1),
    delete: z.number().min(0).max(1),
    mistakes: z.number().min(0).max(1),
  }),
});
export type Scenario = z.infer<typeof ScenarioSchema>;

export interface Intent {
  id: string;
  kind: string;
  vpcId: string;
  spec: Record<string, unknown>;
}

/** A tenant's mistake and the reason the decider must refuse it with. */
export interface Mistake {
  intentId: string;
  expect: string;
}

export interface Expanded {
  hosts: HostRecord[];
  /** Intents per VPC, in the order they must be applied. */
  vpcs: Array<{ vpcId: string; intents: Intent[] }>;
  mistakes: Mistake[];
  /** Hosts with at least one port at some point. */
  usedHosts: ReadonlySet<string>;
  hostsUsed: number;
}

export function expandTopology(t: Scenario['topology']): HostRecord[] {
  const hosts: HostRecord[] = [];
  for (let c = 0; c < t.clusters; c++) {
    const region = t.regions[c % t.regions.length]!;
    const b = t.bindings[c % t.bindings.length]!;
    const perCluster = Math.floor(t.hosts / t.clusters) + (c < t.hosts % t.clusters ? 1 : 0);
    for (let h = 0; h < perCluster; h++) {
      hosts.push({
        hostId: `h-c${c}-${h}`,
        region,
        az: `${region}-a`,
        dc: `${region}-dc1`,
        cluster: `c${c}`,
        // 10.<64+c/256>.<c%256>.<h+1> ... kept unique per host up to 65,000 per cluster.
        underlayIp: `10.${64 + Math.floor(c / 4)}.${(c % 4) * 64 + Math.floor(h / 250)}.${(h % 250) + 1}`,
        binding: b === 'jetstream' ? { type: 'jetstream' } : { type: 'kafka', cluster: b.slice(6) },
      });
    }
  }
  return hosts;
}

export function expand(scenario: Scenario): Expanded {
  const hosts = expandTopology(scenario.topology);
  const w = scenario.workload;
  const rnd = prng(scenario.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const byCluster = new Map<string, HostRecord[]>();
  for (const h of hosts) {
    const key = `${h.region}.${h.cluster}`;
    byCluster.set(key, [...(byCluster.get(key) ?? []), h]);
  }
  const clusters = [...byCluster.values()];
  const used = new Set<string>();
  const mistakes: Mistake[] = [];
  const vpcs: Expanded['vpcs'] = [];
  const subnetCount = Math.min(w.subnets, 200);

  for (let v = 0; v < w.vpcs; v++) {
    const vpcId = `vpc-${String(v + 1).padStart(4, '0')}`;
    const intents: Intent[] = [];
    let n = 0;
    const add = (kind: string, spec: Record<string, unknown>): string => {
      const id = `${vpcId}-${String(++n).padStart(3, '0')}`;
      intents.push({ id, kind, vpcId, spec });
      return id;
    };
    const home = Array.from({ length: Math.min(w.clustersPerVpc, clusters.length) }, () =>
      pick(clusters),
    );
    const hostFor = (): string => {
      const h = pick(pick(home)).hostId;
      used.add(h);
      return h;
    };
    add('vpc.create', { cidr: '10.0.0.0/16' });
    for (let s = 1; s <= subnetCount; s++)
      add('subnet.create', { subnetId: `s${s}`, cidr: `10.0.${s}.0/24`, gatewayIp: `10.0.${s}.1` });
    for (let g = 1; g <= w.securityGroups; g++)
      add('sg.create', {
        sgId: `sg${g}`,
        rules: [
          { direction: 'ingress', protocol: 'tcp', portMin: 22, portMax: 22 },
          { direction: 'egress', protocol: 'any', remoteCidr: '0.0.0.0/0' },
        ],
      });
    const ports: string[] = [];
    for (let p = 1; p <= w.ports; p++) {
      const portId = `p${p}`;
      add('port.create', {
        portId,
        subnetId: `s${1 + (p % subnetCount)}`,
        hostId: hostFor(),
        securityGroupIds: [`sg${1 + (p % w.securityGroups)}`],
      });
      ports.push(portId);
    }
    for (let r = 1; r <= w.routes; r++)
      add('route.set', { destination: `172.${16 + (r % 16)}.${r}.0/24`, nextHop: '10.0.1.1' });
    for (const portId of ports) {
      if (rnd() < w.migrate) add('port.update', { portId, hostId: hostFor() });
    }
    add('sg.update', {
      sgId: 'sg1',
      rules: [
        { direction: 'ingress', protocol: 'tcp', portMin: 22, portMax: 22 },
        { direction: 'ingress', protocol: 'tcp', portMin: 443, portMax: 443 },
        { direction: 'egress', protocol: 'any', remoteCidr: '0.0.0.0/0' },
      ],
    });
    const alive = new Map<string, string>(); // port → its group
    ports.forEach((portId, i) => alive.set(portId, `sg${1 + ((i + 1) % w.securityGroups)}`));
    for (const portId of ports) {
      if (rnd() < w.delete) {
        add('port.delete', { portId });
        alive.delete(portId);
      }
    }
    if (rnd() < w.mistakes) {
      // One of the tenant's mistakes (each VPC makes at most one).
      const inUse = [...alive.values()][0];
      const which = Math.floor(rnd() * (inUse ? 5 : 4));
      const mistake = [
        () =>
          [
            'ip_reserved',
            add('port.create', { portId: 'gw', subnetId: 's1', hostId: hostFor(), ip: '10.0.1.1' }),
          ] as const,
        () =>
          [
            'unknown_host',
            add('port.create', { portId: 'lost', subnetId: 's1', hostId: 'h-nowhere' }),
          ] as const,
        () =>
          [
            'subnet_outside_vpc',
            add('subnet.create', {
              subnetId: 'out',
              cidr: '192.168.0.0/24',
              gatewayIp: '192.168.0.1',
            }),
          ] as const,
        () =>
          [
            'subnet_not_found',
            add('port.create', { portId: 'orphan', subnetId: 'nope', hostId: hostFor() }),
          ] as const,
        () => ['sg_in_use', add('sg.delete', { sgId: inUse })] as const,
      ][which]!();
      mistakes.push({ expect: mistake[0], intentId: mistake[1] });
    }
    vpcs.push({ vpcId, intents });
  }
  return { hosts, vpcs, mistakes, usedHosts: used, hostsUsed: used.size };
}
