/**
 * The VPC decider (STYLE "The VPC actor is a decider"): `decide` turns an intent
 * and the current state into one commit — accepted events or an IntentRejected —
 * and `evolve` folds a recorded commit into the state. Pure and deterministic:
 * time, the intent's INTENTS sequence and host look-ups come in as inputs;
 * allocated IPs and MACs are functions of the state.
 */
import {
  cidrContainsCidr,
  cidrContainsIp,
  cidrSize,
  cidrsOverlap,
  clusterKey,
  fnv1a32,
  formatIpv4,
  formatMac,
  parseCidr,
  parseIpv4,
  type ErrorDetail,
  type EventCommit,
  type HostLookup,
  type IntentOf,
  type PortBinding,
  type RecordedCommit,
  type VpcEvent,
  type VpcIntent,
  PENDING_REVISION,
} from '../../shared/index.js';
import { REMEMBERED_INTENTS, initialState, type SubnetRecord, type VpcState } from './state.js';

export { initialState };

export interface DecideInput {
  intent: VpcIntent;
  /** The intent's INTENTS sequence. */
  cursor: number;
  /** When it was received, ISO 8601. */
  at: string;
}

export interface DecideContext {
  lookupHost: HostLookup;
}

export type Decision =
  | { type: 'commit'; commit: EventCommit }
  /** The id was decided before: no new events; answer like the first time. */
  | { type: 'duplicate'; revision: number; outcome: 'accepted' | 'rejected'; error?: ErrorDetail }
  /** The VPC's cursor is already at or past this intent: it was decided. */
  | { type: 'stale'; cursor: number };

type Verdict = VpcEvent[] | ErrorDetail;

const reject = (code: string, message: string, path?: string): ErrorDetail =>
  path === undefined ? { code, message } : { code, message, path };

/** The commit recording a refusal (also used for intents that failed validation). */
export function rejectionCommit(
  meta: { intentId: string; kind: string; vpcId: string; cursor: number; at: string },
  error: ErrorDetail,
): EventCommit {
  return { ...meta, events: [{ type: 'IntentRejected', ...error }] };
}

/**
 * The answer for an intent decided before — its cursor at or behind the VPC's
 * (stale), or its id remembered (a re-sent intent, valid or not: duplicate) — or
 * undefined for a new one.
 */
export function earlierDecision(
  state: VpcState,
  cursor: number,
  intentId: string,
): Exclude<Decision, { type: 'commit' }> | undefined {
  if (cursor <= state.cursor) return { type: 'stale', cursor: state.cursor };
  const previous = state.intents.get(intentId);
  if (!previous) return undefined;
  return {
    type: 'duplicate',
    revision: previous.revision,
    outcome: previous.outcome,
    ...(previous.error ? { error: previous.error } : {}),
  };
}

export function decide(input: DecideInput, state: VpcState, ctx: DecideContext): Decision {
  const { intent, cursor, at } = input;
  const earlier = earlierDecision(state, cursor, intent.id);
  if (earlier) return earlier;
  const meta = { intentId: intent.id, kind: intent.kind, vpcId: state.vpcId, cursor, at };
  let verdict: Verdict;
  if (intent.vpcId !== state.vpcId) {
    verdict = reject(
      'wrong_vpc',
      `intent for ${intent.vpcId} reached the actor of ${state.vpcId}`,
      'vpcId',
    );
  } else if (intent.expectedRevision !== undefined && intent.expectedRevision !== state.revision) {
    verdict = reject(
      'revision_conflict',
      `expected revision ${intent.expectedRevision}, the VPC was at ${state.revision}; this refusal is recorded at the revision its answer carries: retry with that one`,
      'expectedRevision',
    );
  } else {
    verdict = rules(intent, state, ctx);
  }
  if (!Array.isArray(verdict)) return { type: 'commit', commit: rejectionCommit(meta, verdict) };
  return { type: 'commit', commit: { ...meta, events: verdict } };
}

function rules(intent: VpcIntent, state: VpcState, ctx: DecideContext): Verdict {
  if (intent.kind === 'vpc.create') return vpcCreate(intent, state);
  if (state.status !== 'active')
    return reject('vpc_not_found', `VPC ${state.vpcId} does not exist`, 'vpcId');
  switch (intent.kind) {
    case 'vpc.delete':
      return vpcDelete(state);
    case 'subnet.create':
      return subnetCreate(intent, state);
    case 'subnet.delete':
      return subnetDelete(intent, state);
    case 'port.create':
      return portCreate(intent, state, ctx);
    case 'port.update':
      return portUpdate(intent, state, ctx);
    case 'port.delete': {
      const port = state.ports.get(intent.spec.portId);
      if (!port)
        return reject('port_not_found', `port ${intent.spec.portId} does not exist`, 'spec.portId');
      return [
        {
          type: 'PortDeleted',
          portId: port.portId,
          subnetId: port.subnetId,
          from: bindingOf(state, port.portId),
        },
      ];
    }
    case 'sg.create':
    case 'sg.update':
      return groupUpsert(intent, state);
    case 'sg.delete':
      return groupDelete(intent, state);
    case 'route.set':
      return routeSet(intent, state);
    case 'route.delete':
      if (!state.routes.has(intent.spec.destination)) {
        return reject(
          'route_not_found',
          `no route to ${intent.spec.destination}`,
          'spec.destination',
        );
      }
      return [{ type: 'RouteDeleted', destination: intent.spec.destination }];
    default:
      return assertNever(intent);
  }
}

function assertNever(value: never): never {
  throw new Error(`unhandled intent ${JSON.stringify(value)}`);
}

/** A VNI from the vpcId when none is given (1 … 2^24-1). Give one to be sure it is unique. */
export function derivedVni(vpcId: string): number {
  return (fnv1a32(new TextEncoder().encode(vpcId)) % 16_777_215) + 1;
}

function vpcCreate(intent: IntentOf<'vpc.create'>, state: VpcState): Verdict {
  if (state.status === 'active')
    return reject('vpc_exists', `VPC ${state.vpcId} already exists`, 'vpcId');
  const block = parseCidr(intent.spec.cidr)!;
  if (block.prefix < 8)
    return reject('cidr_too_large', 'a VPC block is /8 or smaller', 'spec.cidr');
  if (block.prefix > 28)
    return reject('cidr_too_small', 'a VPC block is /28 or larger', 'spec.cidr');
  return [
    { type: 'VpcCreated', cidr: intent.spec.cidr, vni: intent.spec.vni ?? derivedVni(state.vpcId) },
  ];
}

function vpcDelete(state: VpcState): Verdict {
  const left = [
    [state.ports.size, 'ports'],
    [state.subnets.size, 'subnets'],
    [state.groups.size, 'security groups'],
    [state.routes.size, 'routes'],
  ].filter(([n]) => (n as number) > 0);
  if (left.length > 0) {
    return reject(
      'vpc_not_empty',
      `VPC ${state.vpcId} still has ${left.map(([n, what]) => `${String(n)} ${String(what)}`).join(', ')}; delete them first`,
    );
  }
  return [{ type: 'VpcDeleted' }];
}

function subnetCreate(intent: IntentOf<'subnet.create'>, state: VpcState): Verdict {
  const { subnetId, cidr, gatewayIp } = intent.spec;
  if (state.subnets.has(subnetId))
    return reject('subnet_exists', `subnet ${subnetId} already exists`, 'spec.subnetId');
  const block = parseCidr(cidr)!;
  if (!cidrContainsCidr(state.block, block)) {
    return reject(
      'subnet_outside_vpc',
      `${cidr} is not inside the VPC block ${state.cidr}`,
      'spec.cidr',
    );
  }
  if (block.prefix > 29)
    return reject('subnet_too_small', 'a subnet is /29 or larger', 'spec.cidr');
  for (const other of state.subnets.values()) {
    if (cidrsOverlap(other.block, block)) {
      return reject(
        'subnet_overlap',
        `${cidr} overlaps subnet ${other.subnetId} (${other.cidr})`,
        'spec.cidr',
      );
    }
  }
  const gateway = parseIpv4(gatewayIp)!;
  if (!cidrContainsIp(block, gateway)) {
    return reject(
      'gateway_outside_subnet',
      `gateway ${gatewayIp} is not inside ${cidr}`,
      'spec.gatewayIp',
    );
  }
  const offset = gateway - block.network;
  if (offset === 0 || offset === cidrSize(block) - 1) {
    return reject(
      'gateway_reserved',
      `gateway ${gatewayIp} is the network or broadcast address`,
      'spec.gatewayIp',
    );
  }
  return [{ type: 'SubnetCreated', subnetId, cidr, gatewayIp }];
}

function subnetDelete(intent: IntentOf<'subnet.delete'>, state: VpcState): Verdict {
  const subnet = state.subnets.get(intent.spec.subnetId);
  if (!subnet)
    return reject(
      'subnet_not_found',
      `subnet ${intent.spec.subnetId} does not exist`,
      'spec.subnetId',
    );
  if (subnet.portCount > 0) {
    return reject(
      'subnet_in_use',
      `subnet ${subnet.subnetId} still has ${subnet.portCount} ports`,
      'spec.subnetId',
    );
  }
  for (const route of state.routes.values()) {
    if (
      cidrContainsIp(subnet.block, parseIpv4(route.nextHop)!) &&
      !hopReachableElsewhere(state, route.nextHop, subnet.subnetId)
    ) {
      return reject(
        'subnet_in_use',
        `route ${route.destination} has its next hop ${route.nextHop} in subnet ${subnet.subnetId}`,
        'spec.subnetId',
      );
    }
  }
  return [{ type: 'SubnetDeleted', subnetId: subnet.subnetId }];
}

function hopReachableElsewhere(state: VpcState, hop: string, except: string): boolean {
  const ip = parseIpv4(hop)!;
  for (const s of state.subnets.values())
    if (s.subnetId !== except && cidrContainsIp(s.block, ip)) return true;
  return false;
}

function checkGroups(state: VpcState, ids: readonly string[] | undefined): ErrorDetail | undefined {
  for (const [i, sgId] of (ids ?? []).entries()) {
    if (!state.groups.has(sgId)) {
      return reject(
        'sg_not_found',
        `security group ${sgId} does not exist`,
        `spec.securityGroupIds.${i}`,
      );
    }
  }
  return undefined;
}

function portCreate(intent: IntentOf<'port.create'>, state: VpcState, ctx: DecideContext): Verdict {
  const { portId, subnetId, hostId } = intent.spec;
  if (state.ports.has(portId))
    return reject('port_exists', `port ${portId} already exists`, 'spec.portId');
  const subnet = state.subnets.get(subnetId);
  if (!subnet)
    return reject('subnet_not_found', `subnet ${subnetId} does not exist`, 'spec.subnetId');
  const place = ctx.lookupHost(hostId);
  if (!place) return reject('unknown_host', `host ${hostId} is not in the topology`, 'spec.hostId');
  const groupError = checkGroups(state, intent.spec.securityGroupIds);
  if (groupError) return groupError;

  let ip: string;
  if (intent.spec.ip !== undefined) {
    const value = parseIpv4(intent.spec.ip)!;
    if (!cidrContainsIp(subnet.block, value)) {
      return reject(
        'ip_outside_subnet',
        `${intent.spec.ip} is not inside subnet ${subnetId} (${subnet.cidr})`,
        'spec.ip',
      );
    }
    const offset = value - subnet.block.network;
    if (offset === 0 || offset === cidrSize(subnet.block) - 1 || value === subnet.gateway) {
      return reject(
        'ip_reserved',
        `${intent.spec.ip} is the network, broadcast or gateway address of ${subnet.cidr}`,
        'spec.ip',
      );
    }
    const holder = state.ipsInUse.get(value);
    if (holder !== undefined)
      return reject('ip_in_use', `${intent.spec.ip} is taken by port ${holder}`, 'spec.ip');
    ip = intent.spec.ip;
  } else {
    const value = allocateIp(state, subnetId);
    if (value === undefined)
      return reject(
        'subnet_full',
        `subnet ${subnetId} (${subnet.cidr}) has no free address`,
        'spec.subnetId',
      );
    ip = formatIpv4(value);
  }

  let mac: string;
  if (intent.spec.mac !== undefined) {
    if (state.macsInUse.has(intent.spec.mac))
      return reject('mac_in_use', `${intent.spec.mac} is taken in this VPC`, 'spec.mac');
    mac = intent.spec.mac;
  } else {
    mac = allocateMac(state, portId);
  }
  return [
    {
      type: 'PortCreated',
      portId,
      subnetId,
      ip,
      mac,
      to: { hostId, place, securityGroupIds: intent.spec.securityGroupIds ?? [] },
    },
  ];
}

/** Usable addresses: the block minus network, broadcast and gateway. */
function capacity(subnet: SubnetRecord): number {
  return cidrSize(subnet.block) - 3;
}

/** The first free address from the subnet's hint, wrapping once. */
export function allocateIp(state: VpcState, subnetId: string): number | undefined {
  const subnet = state.subnets.get(subnetId);
  if (!subnet || subnet.portCount >= capacity(subnet)) return undefined;
  const size = cidrSize(subnet.block);
  let offset = subnet.nextOffset;
  for (let tried = 0; tried < size; tried++, offset++) {
    if (offset <= 0 || offset >= size - 1) offset = 1;
    const ip = subnet.block.network + offset;
    if (ip !== subnet.gateway && !state.ipsInUse.has(ip)) return ip;
  }
  return undefined;
}

/** fa:16:3e plus 24 bits from the port id, probing past MACs in use. */
export function allocateMac(state: VpcState, portId: string): string {
  let low = fnv1a32(new TextEncoder().encode(`${state.vpcId}/${portId}`)) & 0xffffff;
  for (;;) {
    const mac = formatMac([0xfa, 0x16, 0x3e, low >>> 16, (low >>> 8) & 255, low & 255]);
    if (!state.macsInUse.has(mac)) return mac;
    low = (low + 1) & 0xffffff;
  }
}

export function sameBinding(a: PortBinding, b: PortBinding): boolean {
  return (
    a.hostId === b.hostId &&
    a.securityGroupIds.length === b.securityGroupIds.length &&
    a.securityGroupIds.every((g, i) => b.securityGroupIds[i] === g)
  );
}

function bindingOf(state: VpcState, portId: string): PortBinding {
  const port = state.ports.get(portId)!;
  const host = state.hosts.get(port.hostId)!;
  return { hostId: port.hostId, place: host.place, securityGroupIds: port.securityGroupIds };
}

function portUpdate(intent: IntentOf<'port.update'>, state: VpcState, ctx: DecideContext): Verdict {
  const port = state.ports.get(intent.spec.portId);
  if (!port)
    return reject('port_not_found', `port ${intent.spec.portId} does not exist`, 'spec.portId');
  const from = bindingOf(state, port.portId);
  let place = from.place;
  const hostId = intent.spec.hostId ?? port.hostId;
  if (hostId !== port.hostId) {
    const found = ctx.lookupHost(hostId);
    if (!found)
      return reject('unknown_host', `host ${hostId} is not in the topology`, 'spec.hostId');
    place = found;
  }
  const groupError = checkGroups(state, intent.spec.securityGroupIds);
  if (groupError) return groupError;
  const to: PortBinding = {
    hostId,
    place,
    securityGroupIds: intent.spec.securityGroupIds ?? port.securityGroupIds,
  };
  return [{ type: 'PortUpdated', portId: port.portId, from, to }];
}

function groupUpsert(
  intent: IntentOf<'sg.create'> | IntentOf<'sg.update'>,
  state: VpcState,
): Verdict {
  const { sgId, rules: list } = intent.spec;
  const exists = state.groups.has(sgId);
  if (intent.kind === 'sg.create' && exists)
    return reject('sg_exists', `security group ${sgId} already exists`, 'spec.sgId');
  if (intent.kind === 'sg.update' && !exists)
    return reject('sg_not_found', `security group ${sgId} does not exist`, 'spec.sgId');
  for (const [i, rule] of list.entries()) {
    if (
      rule.remoteGroupId !== undefined &&
      rule.remoteGroupId !== sgId &&
      !state.groups.has(rule.remoteGroupId)
    ) {
      return reject(
        'sg_not_found',
        `security group ${rule.remoteGroupId} does not exist`,
        `spec.rules.${i}.remoteGroupId`,
      );
    }
  }
  return [
    {
      type: intent.kind === 'sg.create' ? 'SecurityGroupCreated' : 'SecurityGroupUpdated',
      sgId,
      rules: list,
    },
  ];
}

function groupDelete(intent: IntentOf<'sg.delete'>, state: VpcState): Verdict {
  const { sgId } = intent.spec;
  if (!state.groups.has(sgId))
    return reject('sg_not_found', `security group ${sgId} does not exist`, 'spec.sgId');
  const members = state.groupMembers.get(sgId)?.size ?? 0;
  if (members > 0)
    return reject('sg_in_use', `security group ${sgId} is used by ${members} ports`, 'spec.sgId');
  for (const group of state.groups.values()) {
    if (group.sgId !== sgId && group.rules.some((r) => r.remoteGroupId === sgId)) {
      return reject(
        'sg_in_use',
        `security group ${group.sgId} has a rule naming ${sgId}`,
        'spec.sgId',
      );
    }
  }
  return [{ type: 'SecurityGroupDeleted', sgId }];
}

function routeSet(intent: IntentOf<'route.set'>, state: VpcState): Verdict {
  const { destination, nextHop } = intent.spec;
  // A destination inside the VPC block would shadow local traffic; a wider one
  // (the default route) is fine: local routes win by longest prefix.
  if (cidrContainsCidr(state.block, parseCidr(destination)!)) {
    return reject(
      'route_conflicts_local',
      `${destination} is inside the VPC block ${state.cidr} (local traffic)`,
      'spec.destination',
    );
  }
  const hop = parseIpv4(nextHop)!;
  const reachable = [...state.subnets.values()].some(
    (s) => cidrContainsIp(s.block, hop) && hop !== s.block.network,
  );
  if (!reachable)
    return reject(
      'route_nexthop_unreachable',
      `next hop ${nextHop} is in no subnet of the VPC`,
      'spec.nextHop',
    );
  return [{ type: 'RouteSet', destination, nextHop }];
}

// ── evolve ─────────────────────────────────────────────────────────────────

/** Folds one recorded commit into the state (in place) and returns it. Never throws. */
export function evolve(state: VpcState, recorded: RecordedCommit): VpcState {
  const { revision, commit } = recorded;
  for (const event of commit.events) apply(state, event, revision);
  state.revision = Math.max(state.revision, revision);
  state.cursor = Math.max(state.cursor, commit.cursor);
  const first = commit.events[0];
  const rejected = first?.type === 'IntentRejected';
  state.intents.set(commit.intentId, {
    revision,
    outcome: rejected ? 'rejected' : 'accepted',
    ...(rejected
      ? {
          error: {
            code: first.code,
            message: first.message,
            ...(first.path ? { path: first.path } : {}),
          },
        }
      : {}),
  });
  if (state.intents.size > REMEMBERED_INTENTS) {
    const oldest = state.intents.keys().next().value;
    if (oldest !== undefined) state.intents.delete(oldest);
  }
  return state;
}

/**
 * Gives the commits of a group, folded at PENDING_REVISION before the group was
 * appended, the revision the log assigned it: the records their events touched,
 * their intents' records and the VPC's revision. In place, like {@link evolve};
 * `evolve` at `revision` directly would leave the same state.
 */
export function restamp(
  state: VpcState,
  commits: readonly EventCommit[],
  revision: number,
): VpcState {
  const fix = (rec: { rev: number } | undefined): void => {
    if (rec && rec.rev === PENDING_REVISION) rec.rev = revision;
  };
  for (const { intentId, events } of commits) {
    const record = state.intents.get(intentId);
    if (record && record.revision === PENDING_REVISION) record.revision = revision;
    for (const event of events) {
      switch (event.type) {
        case 'VpcCreated':
        case 'VpcDeleted':
          if (state.vpcRev === PENDING_REVISION) state.vpcRev = revision;
          break;
        case 'SubnetCreated':
          fix(state.subnets.get(event.subnetId));
          break;
        case 'PortCreated':
        case 'PortUpdated':
          fix(state.ports.get(event.portId));
          break;
        case 'SecurityGroupCreated':
        case 'SecurityGroupUpdated':
          fix(state.groups.get(event.sgId));
          break;
        case 'RouteSet':
          fix(state.routes.get(event.destination));
          break;
        default:
          break; // deletions and refusals leave no record with a revision
      }
    }
  }
  if (state.revision === PENDING_REVISION) state.revision = revision;
  return state;
}

/**
 * Passes over a message of the VPC's log that is not a commit: nothing changes but
 * the revision (the anchor of the next append). In place, like {@link evolve}.
 */
export function skip(state: VpcState, revision: number): VpcState {
  state.revision = Math.max(state.revision, revision);
  return state;
}

function apply(state: VpcState, event: VpcEvent, rev: number): void {
  switch (event.type) {
    case 'VpcCreated': {
      const fresh = initialState(state.vpcId);
      Object.assign(state, {
        ...fresh,
        revision: state.revision,
        cursor: state.cursor,
        intents: state.intents,
      });
      state.status = 'active';
      state.cidr = event.cidr;
      state.block = parseCidr(event.cidr) ?? { network: 0, prefix: 0 };
      state.vni = event.vni;
      state.vpcRev = rev;
      return;
    }
    case 'VpcDeleted':
      state.status = 'deleted';
      state.vpcRev = rev;
      return;
    case 'SubnetCreated': {
      const block = parseCidr(event.cidr) ?? { network: 0, prefix: 32 };
      state.subnets.set(event.subnetId, {
        subnetId: event.subnetId,
        cidr: event.cidr,
        block,
        gatewayIp: event.gatewayIp,
        gateway: parseIpv4(event.gatewayIp) ?? 0,
        rev,
        portCount: 0,
        nextOffset: 1,
      });
      return;
    }
    case 'SubnetDeleted':
      state.subnets.delete(event.subnetId);
      return;
    case 'PortCreated': {
      const ipNum = parseIpv4(event.ip) ?? 0;
      state.ports.set(event.portId, {
        portId: event.portId,
        subnetId: event.subnetId,
        hostId: event.to.hostId,
        ip: event.ip,
        ipNum,
        mac: event.mac,
        securityGroupIds: event.to.securityGroupIds,
        rev,
      });
      const subnet = state.subnets.get(event.subnetId);
      if (subnet) {
        subnet.portCount += 1;
        subnet.nextOffset = ipNum - subnet.block.network + 1;
      }
      state.ipsInUse.set(ipNum, event.portId);
      state.macsInUse.add(event.mac);
      bind(state, event.portId, event.to);
      return;
    }
    case 'PortUpdated': {
      const port = state.ports.get(event.portId);
      // An update that changes nothing leaves the port at the revision that last changed it.
      if (!port || sameBinding(event.from, event.to)) return;
      unbind(state, event.portId, { hostId: port.hostId, securityGroupIds: port.securityGroupIds });
      port.hostId = event.to.hostId;
      port.securityGroupIds = event.to.securityGroupIds;
      port.rev = rev;
      bind(state, event.portId, event.to);
      return;
    }
    case 'PortDeleted': {
      const port = state.ports.get(event.portId);
      if (!port) return;
      unbind(state, event.portId, port);
      state.ports.delete(event.portId);
      state.ipsInUse.delete(port.ipNum);
      state.macsInUse.delete(port.mac);
      const subnet = state.subnets.get(port.subnetId);
      if (subnet) subnet.portCount -= 1;
      return;
    }
    case 'SecurityGroupCreated':
    case 'SecurityGroupUpdated':
      state.groups.set(event.sgId, { sgId: event.sgId, rules: event.rules, rev });
      return;
    case 'SecurityGroupDeleted':
      state.groups.delete(event.sgId);
      state.groupMembers.delete(event.sgId);
      return;
    case 'RouteSet':
      state.routes.set(event.destination, {
        destination: event.destination,
        nextHop: event.nextHop,
        rev,
      });
      return;
    case 'RouteDeleted':
      state.routes.delete(event.destination);
      return;
    case 'IntentRejected':
      return;
    default: {
      // Old history must always replay: an unknown event changes nothing.
      const _never: never = event;
      return _never;
    }
  }
}

function bind(state: VpcState, portId: string, to: PortBinding): void {
  let host = state.hosts.get(to.hostId);
  if (!host) {
    host = { place: to.place, ports: new Set() };
    state.hosts.set(to.hostId, host);
    const key = clusterKey(to.place);
    let cluster = state.clusters.get(key);
    if (!cluster) {
      cluster = { place: to.place, hosts: new Set() };
      state.clusters.set(key, cluster);
    }
    cluster.hosts.add(to.hostId);
  }
  host.ports.add(portId);
  for (const sgId of to.securityGroupIds) {
    let members = state.groupMembers.get(sgId);
    if (!members) state.groupMembers.set(sgId, (members = new Set()));
    members.add(portId);
  }
}

function unbind(
  state: VpcState,
  portId: string,
  from: { hostId: string; securityGroupIds: readonly string[] },
): void {
  const host = state.hosts.get(from.hostId);
  if (host) {
    host.ports.delete(portId);
    if (host.ports.size === 0) {
      state.hosts.delete(from.hostId);
      const key = clusterKey(host.place);
      const cluster = state.clusters.get(key);
      cluster?.hosts.delete(from.hostId);
      if (cluster && cluster.hosts.size === 0) state.clusters.delete(key);
    }
  }
  for (const sgId of from.securityGroupIds) state.groupMembers.get(sgId)?.delete(portId);
}
