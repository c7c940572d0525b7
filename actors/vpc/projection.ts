/**
 * Goal-state projection (DESIGN §4.4, §6): from a commit and the VPC state after
 * it, the messages that get exactly the needed change to exactly the hosts that
 * need it —
 *   unicast   `gs…<host>`: a host's own ports, their subnets and groups;
 *   multicast `gsm…<vpc>`: one per cluster hosting the VPC, for what all its hosts
 *             need (neighbor table, routes);
 *   group multicast: a security group's rules go to the hosts with member ports —
 *             as one multicast where every VPC host of the cluster is a member,
 *             else as unicast to each member host;
 *   full      for a host that joins the VPC; an empty full for one that leaves.
 * Every op carries the revision that last changed its resource.
 */
import {
  isMulticast,
  clusterKey,
  goalStateMsgId,
  resourceKey,
  subjects,
  type GoalStateEnvelope,
  type GoalStateMessage,
  type GoalStateOp,
  type PortBinding,
  type RecordedCommit,
  type TopologyPlace,
  type VpcEvent,
} from '../../shared/index.js';
import type { GroupRecord, PortRecord, RouteRecord, SubnetRecord, VpcState } from './state.js';
import { sameBinding } from './decider.js';

export type ProjectedMessage = GoalStateEnvelope;

// ── resource ops ────────────────────────────────────────────────────────────

export const ops = {
  vpc: (s: VpcState): GoalStateOp => ({
    op: 'upsert',
    kind: 'vpc',
    key: 'vpc',
    rev: s.vpcRev,
    value: { cidr: s.cidr, vni: s.vni },
  }),
  subnet: (r: SubnetRecord): GoalStateOp => ({
    op: 'upsert',
    kind: 'subnet',
    key: resourceKey('subnet', r.subnetId),
    rev: r.rev,
    value: { subnetId: r.subnetId, cidr: r.cidr, gatewayIp: r.gatewayIp },
  }),
  port: (p: PortRecord): GoalStateOp => ({
    op: 'upsert',
    kind: 'port',
    key: resourceKey('port', p.portId),
    rev: p.rev,
    value: {
      portId: p.portId,
      subnetId: p.subnetId,
      ip: p.ip,
      mac: p.mac,
      securityGroupIds: p.securityGroupIds,
    },
  }),
  neighbor: (p: PortRecord): GoalStateOp => ({
    op: 'upsert',
    kind: 'neighbor',
    key: resourceKey('neighbor', p.portId),
    rev: p.rev,
    value: {
      portId: p.portId,
      subnetId: p.subnetId,
      ip: p.ip,
      mac: p.mac,
      hostId: p.hostId,
      securityGroupIds: p.securityGroupIds,
    },
  }),
  sg: (g: GroupRecord): GoalStateOp => ({
    op: 'upsert',
    kind: 'sg',
    key: resourceKey('sg', g.sgId),
    rev: g.rev,
    value: { sgId: g.sgId, rules: g.rules },
  }),
  route: (r: RouteRecord): GoalStateOp => ({
    op: 'upsert',
    kind: 'route',
    key: resourceKey('route', r.destination),
    rev: r.rev,
    value: { destination: r.destination, nextHop: r.nextHop },
  }),
  delete: (kind: GoalStateOp['kind'], name: string, rev: number): GoalStateOp => ({
    op: 'delete',
    kind,
    key: resourceKey(kind, name),
    rev,
  }),
};

/** Everything host `hostId` needs of the VPC (empty when it hosts none of it). */
export function hostResources(state: VpcState, hostId: string): GoalStateOp[] {
  const host = state.hosts.get(hostId);
  if (!host || state.status !== 'active') return [];
  const out: GoalStateOp[] = [ops.vpc(state)];
  const subnets = new Set<string>();
  const groups = new Set<string>();
  const local: PortRecord[] = [];
  for (const portId of host.ports) {
    const port = state.ports.get(portId);
    if (!port) continue;
    local.push(port);
    subnets.add(port.subnetId);
    for (const g of port.securityGroupIds) groups.add(g);
  }
  for (const id of subnets) {
    const subnet = state.subnets.get(id);
    if (subnet) out.push(ops.subnet(subnet));
  }
  for (const port of local) out.push(ops.port(port));
  for (const port of state.ports.values()) out.push(ops.neighbor(port));
  for (const id of groups) {
    const group = state.groups.get(id);
    if (group) out.push(ops.sg(group));
  }
  for (const route of state.routes.values()) out.push(ops.route(route));
  return out;
}

export function fullState(
  state: VpcState,
  hostId: string,
  revision: number,
  bucket: number,
): GoalStateMessage {
  return {
    vpcId: state.vpcId,
    bucket,
    revision,
    mode: 'full',
    target: hostId,
    ops: hostResources(state, hostId),
  };
}

// ── deltas ───────────────────────────────────────────────────────────────────

class Outbox {
  readonly unicast = new Map<string, { place: TopologyPlace; ops: GoalStateOp[] }>();
  readonly multicast = new Map<string, { place: TopologyPlace; ops: GoalStateOp[] }>();
  readonly joined = new Map<string, TopologyPlace>();
  readonly left = new Map<string, TopologyPlace>();

  toHost(hostId: string, place: TopologyPlace, op: GoalStateOp): void {
    let entry = this.unicast.get(hostId);
    if (!entry) this.unicast.set(hostId, (entry = { place, ops: [] }));
    entry.ops.push(op);
  }

  toCluster(place: TopologyPlace, op: GoalStateOp): void {
    const key = clusterKey(place);
    let entry = this.multicast.get(key);
    if (!entry) this.multicast.set(key, (entry = { place, ops: [] }));
    entry.ops.push(op);
  }
}

/** Does `hostId` have a port other than `exceptPort` that passes `test` (uses a subnet or group)? */
function hostUses(
  state: VpcState,
  hostId: string,
  exceptPort: string,
  test: (p: PortRecord) => boolean,
): boolean {
  const host = state.hosts.get(hostId);
  if (!host) return false;
  for (const portId of host.ports) {
    if (portId === exceptPort) continue;
    const port = state.ports.get(portId);
    if (port && test(port)) return true;
  }
  return false;
}

/** The port arrives on `to.hostId` (create, or the new side of a migration). */
function arrive(state: VpcState, out: Outbox, port: PortRecord, to: PortBinding): void {
  const host = state.hosts.get(to.hostId);
  if (!host) return;
  if (host.ports.size === 1) {
    out.joined.set(to.hostId, to.place);
    return;
  }
  out.toHost(to.hostId, to.place, ops.port(port));
  if (!hostUses(state, to.hostId, port.portId, (p) => p.subnetId === port.subnetId)) {
    const subnet = state.subnets.get(port.subnetId);
    if (subnet) out.toHost(to.hostId, to.place, ops.subnet(subnet));
  }
  for (const g of to.securityGroupIds) {
    const group = state.groups.get(g);
    if (group && !hostUses(state, to.hostId, port.portId, (p) => p.securityGroupIds.includes(g))) {
      out.toHost(to.hostId, to.place, ops.sg(group));
    }
  }
}

/** The port leaves `from.hostId` (delete, or the old side of a migration). */
function depart(
  state: VpcState,
  out: Outbox,
  portId: string,
  subnetId: string,
  from: PortBinding,
  rev: number,
): void {
  if (!state.hosts.has(from.hostId)) {
    out.left.set(from.hostId, from.place);
    return;
  }
  out.toHost(from.hostId, from.place, ops.delete('port', portId, rev));
  if (!hostUses(state, from.hostId, portId, (p) => p.subnetId === subnetId)) {
    out.toHost(from.hostId, from.place, ops.delete('subnet', subnetId, rev));
  }
  for (const g of from.securityGroupIds) {
    if (!hostUses(state, from.hostId, portId, (p) => p.securityGroupIds.includes(g))) {
      out.toHost(from.hostId, from.place, ops.delete('sg', g, rev));
    }
  }
}

function toAllClusters(state: VpcState, out: Outbox, op: GoalStateOp): void {
  for (const cluster of state.clusters.values()) out.toCluster(cluster.place, op);
}

function projectEvent(state: VpcState, out: Outbox, event: VpcEvent, rev: number): void {
  switch (event.type) {
    case 'PortCreated': {
      const port = state.ports.get(event.portId);
      if (!port) return;
      arrive(state, out, port, event.to);
      toAllClusters(state, out, ops.neighbor(port));
      return;
    }
    case 'PortDeleted':
      depart(state, out, event.portId, event.subnetId, event.from, rev);
      toAllClusters(state, out, ops.delete('neighbor', event.portId, rev));
      return;
    case 'PortUpdated': {
      const port = state.ports.get(event.portId);
      if (!port || sameBinding(event.from, event.to)) return;
      if (event.from.hostId !== event.to.hostId) {
        depart(state, out, port.portId, port.subnetId, event.from, rev);
        arrive(state, out, port, event.to);
      } else {
        const host = event.to;
        out.toHost(host.hostId, host.place, ops.port(port));
        for (const g of host.securityGroupIds) {
          const group = state.groups.get(g);
          if (
            group &&
            !event.from.securityGroupIds.includes(g) &&
            !hostUses(state, host.hostId, port.portId, (p) => p.securityGroupIds.includes(g))
          ) {
            out.toHost(host.hostId, host.place, ops.sg(group));
          }
        }
        for (const g of event.from.securityGroupIds) {
          if (
            !host.securityGroupIds.includes(g) &&
            !hostUses(state, host.hostId, port.portId, (p) => p.securityGroupIds.includes(g))
          ) {
            out.toHost(host.hostId, host.place, ops.delete('sg', g, rev));
          }
        }
      }
      toAllClusters(state, out, ops.neighbor(port));
      return;
    }
    case 'SecurityGroupUpdated': {
      const group = state.groups.get(event.sgId);
      const members = state.groupMembers.get(event.sgId);
      if (!group || !members || members.size === 0) return;
      const byCluster = new Map<string, Set<string>>();
      for (const portId of members) {
        const port = state.ports.get(portId);
        const host = port && state.hosts.get(port.hostId);
        if (!port || !host) continue;
        const key = clusterKey(host.place);
        let hosts = byCluster.get(key);
        if (!hosts) byCluster.set(key, (hosts = new Set()));
        hosts.add(port.hostId);
      }
      for (const [key, memberHosts] of byCluster) {
        const cluster = state.clusters.get(key);
        if (!cluster) continue;
        if (memberHosts.size === cluster.hosts.size) {
          out.toCluster(cluster.place, ops.sg(group));
        } else {
          for (const hostId of memberHosts) out.toHost(hostId, cluster.place, ops.sg(group));
        }
      }
      return;
    }
    case 'RouteSet': {
      const route = state.routes.get(event.destination);
      if (route) toAllClusters(state, out, ops.route(route));
      return;
    }
    case 'RouteDeleted':
      toAllClusters(state, out, ops.delete('route', event.destination, rev));
      return;
    // Nothing a host has changes: new subnets and groups reach hosts with their
    // first port; deleting them requires them unused; an empty VPC has no hosts.
    case 'VpcCreated':
    case 'VpcDeleted':
    case 'SubnetCreated':
    case 'SubnetDeleted':
    case 'SecurityGroupCreated':
    case 'SecurityGroupDeleted':
    case 'IntentRejected':
      return;
    default: {
      const _never: never = event;
      return _never;
    }
  }
}

/**
 * The goal-state messages of one commit, given the state *after* it was evolved
 * (the events carry the pre-images the projection needs).
 */
export function project(
  after: VpcState,
  recorded: RecordedCommit,
  bucket: number,
): ProjectedMessage[] {
  const { revision, commit } = recorded;
  const out = new Outbox();
  for (const event of commit.events) projectEvent(after, out, event, revision);

  const messages: ProjectedMessage[] = [];
  const vpcId = after.vpcId;
  const emit = (
    subject: string,
    target: string,
    mode: 'delta' | 'full',
    list: GoalStateOp[],
  ): void => {
    messages.push({
      subject,
      msgId: goalStateMsgId(vpcId, revision, target),
      message: { vpcId, bucket, revision, mode, target, ops: list },
    });
  };
  for (const [hostId, place] of out.left)
    emit(subjects.goalStateHost(place, hostId), hostId, 'full', []);
  for (const [hostId, place] of out.joined) {
    emit(subjects.goalStateHost(place, hostId), hostId, 'full', hostResources(after, hostId));
  }
  for (const [hostId, entry] of out.unicast) {
    if (out.joined.has(hostId) || out.left.has(hostId)) continue;
    emit(subjects.goalStateHost(entry.place, hostId), hostId, 'delta', entry.ops);
  }
  for (const [key, entry] of out.multicast) {
    // A cluster whose only VPC hosts joined in this commit has it all in their full states.
    const hosts = after.clusters.get(key)?.hosts;
    if (hosts && hosts.size <= out.joined.size && [...hosts].every((h) => out.joined.has(h)))
      continue;
    emit(subjects.goalStateMulticast(entry.place, vpcId), key, 'delta', entry.ops);
  }
  return messages;
}

// ── who a commit concerns ────────────────────────────────────────────────────

/**
 * The hosts whose membership in the VPC a commit may have changed (the hosts its
 * port events name), split by whether they hold the VPC after it: what the owner
 * writes to the VPC↔host mapping.
 */
export function hostChanges(
  after: VpcState,
  recorded: RecordedCommit,
): { present: string[]; absent: string[] } {
  const touched = new Set<string>();
  for (const event of recorded.commit.events) {
    if (event.type === 'PortCreated') touched.add(event.to.hostId);
    else if (event.type === 'PortDeleted') touched.add(event.from.hostId);
    else if (event.type === 'PortUpdated') {
      touched.add(event.from.hostId);
      touched.add(event.to.hostId);
    }
  }
  const present: string[] = [];
  const absent: string[] = [];
  for (const hostId of touched) (after.hosts.has(hostId) ? present : absent).push(hostId);
  return { present, absent };
}

/**
 * The hosts that must apply a commit's goal states: each unicast target, and every
 * VPC host of each multicast cluster. `programmed` waits for their acks.
 */
export function affectedHosts(after: VpcState, messages: readonly ProjectedMessage[]): string[] {
  const hosts = new Set<string>();
  for (const { message } of messages) {
    // A multicast's target is a cluster key (it has dots; a hostId cannot).
    const cluster = after.clusters.get(message.target);
    if (cluster) for (const h of cluster.hosts) hosts.add(h);
    else if (!isMulticast(message.target)) hosts.add(message.target);
  }
  return [...hosts];
}

// ── a group commit's messages ────────────────────────────────────────────────

/** A host's op on one resource as of `state`: what a full state would say, or a delete. */
function finalOp(
  state: VpcState,
  hostId: string | undefined,
  key: string,
  rev: number,
): GoalStateOp {
  const colon = key.indexOf(':');
  const kind = (colon < 0 ? key : key.slice(0, colon)) as GoalStateOp['kind'];
  const name = colon < 0 ? '' : key.slice(colon + 1);
  const host = hostId === undefined ? undefined : state.hosts.get(hostId);
  const hostPorts = (): PortRecord[] =>
    host ? [...host.ports].flatMap((id) => state.ports.get(id) ?? []) : [];
  const gone = ops.delete(kind, name, rev);
  if (state.status !== 'active') return gone;
  switch (kind) {
    case 'vpc':
      return ops.vpc(state);
    case 'neighbor': {
      const port = state.ports.get(name);
      return port ? ops.neighbor(port) : gone;
    }
    case 'route': {
      const route = state.routes.get(name);
      return route ? ops.route(route) : gone;
    }
    case 'port': {
      const port = state.ports.get(name);
      return port && (hostId === undefined || port.hostId === hostId) ? ops.port(port) : gone;
    }
    case 'subnet': {
      const subnet = state.subnets.get(name);
      if (!subnet) return gone;
      return hostId === undefined || hostPorts().some((p) => p.subnetId === name)
        ? ops.subnet(subnet)
        : gone;
    }
    case 'sg': {
      const group = state.groups.get(name);
      if (!group) return gone;
      return hostId === undefined || hostPorts().some((p) => p.securityGroupIds.includes(name))
        ? ops.sg(group)
        : gone;
    }
    default:
      return gone;
  }
}

/** Resources every VPC host holds alike: a multicast of them suits all hosts of a cluster. */
const VPC_WIDE = new Set<GoalStateOp['kind']>(['vpc', 'neighbor', 'route']);

/**
 * The goal-state messages of a group commit, from the messages each of its commits
 * projected (in order, folded at PENDING_REVISION) and the state after the group
 * (restamped): one message per target at the group's revision.
 *
 * A host that joined or left in the group gets its full state as of the group's
 * end. Every other target gets one delta naming each resource the group touched
 * for it, with the resource as it stands at the group's end. All messages of one
 * revision must agree on a resource for every host they reach (an agent applies an
 * op once per revision, whichever message comes first), so each op is the host's
 * final view; a multicast op that is not right for every VPC host of its cluster
 * (a security group some of them no longer need) goes to each of them by unicast.
 */
export function groupMessages(
  after: VpcState,
  perCommit: readonly (readonly ProjectedMessage[])[],
  revision: number,
  bucket: number,
): ProjectedMessage[] {
  const vpcId = after.vpcId;
  const fulls = new Map<string, string>(); // host → subject
  const deltas = new Map<string, { subject: string; keys: Set<string> }>();
  const touch = (target: string, subject: string, key: string): void => {
    let entry = deltas.get(target);
    if (!entry) deltas.set(target, (entry = { subject, keys: new Set() }));
    entry.keys.add(key);
  };
  for (const messages of perCommit) {
    for (const { subject, message } of messages) {
      if (message.mode === 'full') fulls.set(message.target, subject);
      else for (const op of message.ops) touch(message.target, subject, op.key);
    }
  }
  // Multicast ops that some VPC host of the cluster must not have become unicasts.
  for (const [target, entry] of deltas) {
    if (!isMulticast(target)) continue;
    const cluster = after.clusters.get(target);
    if (!cluster) {
      deltas.delete(target); // no VPC host left there: the left ones have their fulls
      continue;
    }
    for (const key of entry.keys) {
      const wide = finalOp(after, undefined, key, revision);
      if (VPC_WIDE.has(wide.kind)) continue;
      const split = [...cluster.hosts].some((h) => finalOp(after, h, key, revision).op !== wide.op);
      if (!split) continue;
      entry.keys.delete(key);
      for (const h of cluster.hosts) touch(h, subjects.goalStateHost(cluster.place, h), key);
    }
    if (entry.keys.size === 0) deltas.delete(target);
  }
  const out: ProjectedMessage[] = [];
  for (const [hostId, subject] of fulls) {
    out.push({
      subject,
      msgId: goalStateMsgId(vpcId, revision, hostId),
      message: fullState(after, hostId, revision, bucket),
    });
  }
  for (const [target, { subject, keys }] of deltas) {
    if (fulls.has(target)) continue;
    const host = isMulticast(target) ? undefined : target;
    out.push({
      subject,
      msgId: goalStateMsgId(vpcId, revision, target),
      message: {
        vpcId,
        bucket,
        revision,
        mode: 'delta',
        target,
        ops: [...keys].map((key) => finalOp(after, host, key, revision)),
      },
    });
  }
  return out;
}
