/**
 * A host's goal state in Alcor's schema (issue 26), pure: what the ACA bridge
 * pushes to an Alcor Control Agent. Each resource of ours maps to Alcor
 * resources, keyed `<TYPE>/<id>`. Alcor's ids are global (UUIDs) and ours are
 * per VPC, so an Alcor id is `<vpcId>:<our id>` (the VPC's is its id), and so
 * are the references between resources (subnet_id, security group ids):
 *
 *   vpc            → VPC/<v>                 (cidr, tunnel_id = VNI)
 *   subnet:<s>     → SUBNET/<v>:<s>          (cidr, gateway, tunnel_id, DHCP on)
 *   port:<p>       → PORT/<v>:<p>, DHCP/<v>:<p>  (host_info = this host's underlay IP)
 *   neighbor:<p>   → NEIGHBOR/<v>:<p>        (L2 in a subnet this host holds, else L3;
 *                                             host_ip_address = the port's host's underlay IP)
 *   sg:<g>         → SECURITYGROUP/<v>:<g>   (a rule of protocol `any` is three: TCP, UDP, ICMP)
 *   route:<cidr>   → ROUTER/<v>:router       (one router per VPC: a routing table per
 *                                             subnet held, every route in each)
 *
 * A message is pushed as the difference it makes to these resources on this host:
 * `touched` names those it can change (before it is applied to the host's model),
 * `alcorResources` gives them as the model holds them, `changes` compares before
 * and after (CREATE, UPDATE, DELETE; a full pushes every resource again, FULL).
 * Configurations are compared without the fields set when pushed (revision_number,
 * request_id, update_type): revision_number is the revision of the message that
 * pushes the resource.
 */
import type {
  AlcorConfigurationBase,
  AlcorGoalStateV2,
  AlcorNeighborConfiguration,
  AlcorOperationType,
  AlcorResourceType,
  AlcorSecurityGroupRule,
  AlcorState,
  GoalStateMessage,
  ResourceValue,
} from '../../shared/index.js';
import { ALCOR_STATE_MAPS } from '../../shared/index.js';
import type { HostModel, ResourceEntry } from './model.js';

/** `<TYPE>/<id>`: one Alcor resource of a VPC on a host. */
export type AlcorKey = string;

export interface AlcorResource {
  type: AlcorResourceType;
  id: string;
  /** Without revision_number, request_id and update_type (set when pushed). */
  config: AlcorConfigurationBase;
}

export interface AlcorChange extends AlcorResource {
  operation: AlcorOperationType;
}

/** What a translation needs beyond the model: this host, and where other hosts are. */
export interface AlcorHost {
  hostId: string;
  underlayIp: string;
  /** A host's underlay IP (for neighbors), or undefined when not known. */
  hostIp: (hostId: string) => string | undefined;
}

export const alcorKey = (type: AlcorResourceType, id: string): AlcorKey => `${type}/${id}`;
/** The Alcor id of one of a VPC's resources (ours are unique in their VPC only). */
export const alcorId = (vpcId: string, name: string): string => `${vpcId}:${name}`;
const ROUTER = 'router';

/** The Alcor resources one of our resource keys maps to. */
function keysOf(vpcId: string, key: string): AlcorKey[] {
  const at = key.indexOf(':');
  const kind = at < 0 ? key : key.slice(0, at);
  const name = key.slice(at + 1);
  switch (kind) {
    case 'vpc':
      return [alcorKey('VPC', vpcId)];
    case 'subnet':
      return [alcorKey('SUBNET', alcorId(vpcId, name))];
    case 'port':
      return [alcorKey('PORT', alcorId(vpcId, name)), alcorKey('DHCP', alcorId(vpcId, name))];
    case 'neighbor':
      return [alcorKey('NEIGHBOR', alcorId(vpcId, name))];
    case 'sg':
      return [alcorKey('SECURITYGROUP', alcorId(vpcId, name))];
    case 'route':
      return [alcorKey('ROUTER', alcorId(vpcId, ROUTER))];
    default:
      return [];
  }
}

/**
 * The Alcor resources of the message's VPC that applying it may change, from the
 * model before it is applied: those its ops map to, and what depends on them (a
 * subnet: every neighbor's L2/L3 and the router's tables; the VPC: its tunnel id
 * everywhere). A full: every resource of the VPC here, and every one it brings.
 */
export function touched(model: HostModel, message: GoalStateMessage): Set<AlcorKey> {
  const { vpcId } = message;
  const out = new Set<AlcorKey>();
  const held = model.vpcs.get(vpcId)?.resources;
  const kinds = new Set(message.ops.map((op) => op.kind));
  const everything = message.mode === 'full' || kinds.has('vpc');
  for (const op of message.ops) for (const k of keysOf(vpcId, op.key)) out.add(k);
  if (held && (everything || kinds.has('subnet'))) {
    for (const [key, entry] of held) {
      if (entry.deleted) continue;
      if (everything || entry.kind === 'neighbor' || entry.kind === 'route')
        for (const k of keysOf(vpcId, key)) out.add(k);
    }
  }
  if (kinds.has('subnet')) out.add(alcorKey('ROUTER', alcorId(vpcId, ROUTER)));
  return out;
}

/** The live entry of one of our resources in the VPC (undefined if absent or deleted). */
function live(
  resources: ReadonlyMap<string, ResourceEntry> | undefined,
  key: string,
): ResourceEntry | undefined {
  const entry = resources?.get(key);
  return entry && !entry.deleted ? entry : undefined;
}

const value = <K extends keyof ValueOf>(entry: ResourceEntry | undefined): ValueOf[K] | undefined =>
  entry?.value as ValueOf[K] | undefined;
interface ValueOf {
  vpc: ResourceValue<'vpc'>;
  subnet: ResourceValue<'subnet'>;
  port: ResourceValue<'port'>;
  neighbor: ResourceValue<'neighbor'>;
  sg: ResourceValue<'sg'>;
  route: ResourceValue<'route'>;
}

const PROTOCOLS = {
  tcp: ['TCP'],
  udp: ['UDP'],
  icmp: ['ICMP'],
  any: ['TCP', 'UDP', 'ICMP'],
} as const;

function sgRules(vpcId: string, sg: ResourceValue<'sg'>): AlcorSecurityGroupRule[] {
  const groupId = alcorId(vpcId, sg.sgId);
  return sg.rules.flatMap((rule, i) => {
    const protocols = PROTOCOLS[rule.protocol];
    return protocols.map((protocol) => ({
      operation_type: 'CREATE' as const,
      security_group_id: groupId,
      id: protocols.length > 1 ? `${groupId}-${i}-${protocol.toLowerCase()}` : `${groupId}-${i}`,
      direction: rule.direction === 'ingress' ? ('INGRESS' as const) : ('EGRESS' as const),
      ethertype: 'IPV4' as const,
      protocol,
      port_range_min: rule.portMin ?? 0,
      port_range_max: rule.portMax ?? 0,
      remote_ip_prefix: rule.remoteCidr ?? '',
      remote_group_id: rule.remoteGroupId ? alcorId(vpcId, rule.remoteGroupId) : '',
    }));
  });
}

/** One Alcor resource as the model holds it now, or undefined if the host has none. */
function resourceOf(
  model: HostModel,
  vpcId: string,
  key: AlcorKey,
  host: AlcorHost,
): AlcorResource | undefined {
  const resources = model.vpcs.get(vpcId)?.resources;
  const slash = key.indexOf('/');
  const type = key.slice(0, slash) as AlcorResourceType;
  const id = key.slice(slash + 1);
  // Our name of it (the VPC's own id has no prefix).
  const name = id.slice(vpcId.length + 1);
  const vni = value<'vpc'>(live(resources, 'vpc'))?.vni ?? 0;
  const made = (config: AlcorConfigurationBase): AlcorResource => ({
    type,
    id,
    config: { id, ...config },
  });
  switch (type) {
    case 'VPC': {
      const vpc = value<'vpc'>(live(resources, 'vpc'));
      return (
        vpc && made({ name: vpcId, cidr: vpc.cidr, tunnel_id: vpc.vni } as AlcorConfigurationBase)
      );
    }
    case 'SUBNET': {
      const subnet = value<'subnet'>(live(resources, `subnet:${name}`));
      return (
        subnet &&
        made({
          network_type: 'VXLAN',
          vpc_id: vpcId,
          name,
          cidr: subnet.cidr,
          tunnel_id: vni,
          gateway: { ip_address: subnet.gatewayIp },
          dhcp_enable: true,
        } as AlcorConfigurationBase)
      );
    }
    case 'PORT': {
      const port = value<'port'>(live(resources, `port:${name}`));
      return (
        port &&
        made({
          vpc_id: vpcId,
          name,
          mac_address: port.mac,
          admin_state_up: true,
          host_info: { ip_address: host.underlayIp },
          fixed_ips: [{ subnet_id: alcorId(vpcId, port.subnetId), ip_address: port.ip }],
          security_group_ids: port.securityGroupIds.map((g) => ({ id: alcorId(vpcId, g) })),
        } as AlcorConfigurationBase)
      );
    }
    case 'DHCP': {
      const port = value<'port'>(live(resources, `port:${name}`));
      return (
        port &&
        made({
          subnet_id: alcorId(vpcId, port.subnetId),
          mac_address: port.mac,
          ipv4_address: port.ip,
          port_host_name: name,
        } as AlcorConfigurationBase)
      );
    }
    case 'NEIGHBOR': {
      const n = value<'neighbor'>(live(resources, `neighbor:${name}`));
      if (!n) return undefined;
      const config: AlcorNeighborConfiguration = {
        vpc_id: vpcId,
        name,
        mac_address: n.mac,
        host_ip_address: host.hostIp(n.hostId) ?? '',
        fixed_ips: [
          {
            neighbor_type: live(resources, `subnet:${n.subnetId}`) ? 'L2' : 'L3',
            subnet_id: alcorId(vpcId, n.subnetId),
            ip_address: n.ip,
            tunnel_id: vni,
          },
        ],
      };
      return made(config);
    }
    case 'SECURITYGROUP': {
      const sg = value<'sg'>(live(resources, `sg:${name}`));
      return (
        sg &&
        made({
          vpc_id: vpcId,
          name,
          security_group_rules: sgRules(vpcId, sg),
        } as AlcorConfigurationBase)
      );
    }
    case 'ROUTER': {
      const routes: Array<ResourceValue<'route'>> = [];
      const subnets: string[] = [];
      for (const entry of resources?.values() ?? []) {
        if (entry.deleted) continue;
        if (entry.kind === 'route') routes.push(value<'route'>(entry)!);
        else if (entry.kind === 'subnet')
          subnets.push(alcorId(vpcId, value<'subnet'>(entry)!.subnetId));
      }
      if (routes.length === 0) return undefined;
      routes.sort((a, b) => a.destination.localeCompare(b.destination));
      const rules = routes.map((r) => ({
        operation_type: 'CREATE' as const,
        id: r.destination,
        name: r.destination,
        destination: r.destination,
        next_hop_ip: r.nextHop,
        priority: 0,
      }));
      const tables = (subnets.length > 0 ? subnets.sort() : ['']).map((subnet_id) => ({
        subnet_id,
        routing_rules: rules,
      }));
      return made({ subnet_routing_tables: tables } as AlcorConfigurationBase);
    }
    default:
      return undefined;
  }
}

/** The Alcor resources named, as the model holds them now (absent: the host has none). */
export function alcorResources(
  model: HostModel,
  vpcId: string,
  keys: Iterable<AlcorKey>,
  host: AlcorHost,
): Map<AlcorKey, AlcorResource> {
  const out = new Map<AlcorKey, AlcorResource>();
  for (const key of keys) {
    const resource = resourceOf(model, vpcId, key, host);
    if (resource) out.set(key, resource);
  }
  return out;
}

/** Every Alcor resource the model holds, by VPC (what a FULL push sends). */
export function allAlcorResources(
  model: HostModel,
  host: AlcorHost,
): Map<string, Map<AlcorKey, AlcorResource>> {
  const out = new Map<string, Map<AlcorKey, AlcorResource>>();
  for (const [vpcId, vpc] of model.vpcs) {
    const keys = new Set<AlcorKey>();
    for (const [key, entry] of vpc.resources)
      if (!entry.deleted) for (const k of keysOf(vpcId, key)) keys.add(k);
    out.set(vpcId, alcorResources(model, vpcId, keys, host));
  }
  return out;
}

/** Canonical text of a configuration, to tell a change from none. */
const same = (a: AlcorConfigurationBase, b: AlcorConfigurationBase): boolean =>
  JSON.stringify(a) === JSON.stringify(b);

/**
 * What to push for one message: a resource new here is a CREATE, one that changed
 * an UPDATE, one gone a DELETE; unchanged ones are not sent, except by a full,
 * which sends every resource it leaves (the agent may have lost them).
 */
export function changes(
  before: ReadonlyMap<AlcorKey, AlcorResource>,
  after: ReadonlyMap<AlcorKey, AlcorResource>,
  full: boolean,
): AlcorChange[] {
  const out: AlcorChange[] = [];
  for (const [key, resource] of after) {
    const was = before.get(key);
    if (!was) out.push({ ...resource, operation: 'CREATE' });
    else if (full || !same(was.config, resource.config))
      out.push({ ...resource, operation: 'UPDATE' });
  }
  for (const [key, resource] of before)
    if (!after.has(key)) out.push({ ...resource, operation: 'DELETE' });
  return out;
}

/** A resource's state on the wire: its configuration with the push's fields set. */
export function alcorState(
  change: AlcorChange,
  push: { revision: number; requestId: string; full: boolean },
): AlcorState {
  return {
    operation_type: change.operation,
    configuration: {
      ...change.config,
      revision_number: push.revision,
      request_id: push.requestId,
      update_type: push.full ? 'FULL' : 'DELTA',
    },
  };
}

/**
 * One GoalStateV2 of several changes, each with its own push fields (later changes
 * of a resource replace earlier ones), and the host's resource list under its IP.
 */
export function goalStateV2(
  hostIp: string,
  entries: Iterable<{ change: AlcorChange; state: AlcorState }>,
): AlcorGoalStateV2 {
  const out: AlcorGoalStateV2 = { format_version: 1 };
  const listed = new Map<AlcorKey, { type: AlcorResourceType; id: string }>();
  for (const { change, state } of entries) {
    const map = ALCOR_STATE_MAPS[change.type];
    (out[map] ??= {})[change.id] = state;
    listed.set(alcorKey(change.type, change.id), { type: change.type, id: change.id });
  }
  out.host_resources = { [hostIp]: { resources: [...listed.values()] } };
  return out;
}
