/**
 * A VPC's state as plain JSON (KV `vpc-snapshots`, DESIGN §4.7) and back. Only the
 * primary records, the host places and the remembered intent ids are written; the
 * indexes are rebuilt on restore, so a snapshot cannot disagree with itself.
 */
import { clusterKey, type TopologyPlace } from '../../shared/index.js';
import {
  initialState,
  type GroupRecord,
  type IntentRecord,
  type PortRecord,
  type RouteRecord,
  type SubnetRecord,
  type VpcState,
} from './state.js';

export const SNAPSHOT_FORMAT = 1;

/** The state's scalar fields as they are, its records and host places as lists. */
export interface VpcSnapshot extends Pick<
  VpcState,
  'vpcId' | 'status' | 'revision' | 'cursor' | 'cidr' | 'block' | 'vni' | 'vpcRev'
> {
  format: typeof SNAPSHOT_FORMAT;
  subnets: SubnetRecord[];
  ports: PortRecord[];
  groups: GroupRecord[];
  routes: RouteRecord[];
  hosts: [string, TopologyPlace][];
  intents: [string, IntentRecord][];
}

export function toSnapshot(state: VpcState): VpcSnapshot {
  return {
    format: SNAPSHOT_FORMAT,
    vpcId: state.vpcId,
    status: state.status,
    revision: state.revision,
    cursor: state.cursor,
    cidr: state.cidr,
    block: state.block,
    vni: state.vni,
    vpcRev: state.vpcRev,
    subnets: [...state.subnets.values()],
    ports: [...state.ports.values()],
    groups: [...state.groups.values()],
    routes: [...state.routes.values()],
    hosts: [...state.hosts].map(([hostId, host]) => [hostId, host.place]),
    intents: [...state.intents],
  };
}

/** The state a snapshot was taken of, indexes included. */
export function fromSnapshot(snapshot: VpcSnapshot): VpcState {
  const state = initialState(snapshot.vpcId);
  Object.assign(state, {
    status: snapshot.status,
    revision: snapshot.revision,
    cursor: snapshot.cursor,
    cidr: snapshot.cidr,
    block: snapshot.block,
    vni: snapshot.vni,
    vpcRev: snapshot.vpcRev,
  });
  for (const subnet of snapshot.subnets) state.subnets.set(subnet.subnetId, { ...subnet });
  for (const group of snapshot.groups) state.groups.set(group.sgId, group);
  for (const route of snapshot.routes) state.routes.set(route.destination, route);
  for (const [hostId, place] of snapshot.hosts) {
    state.hosts.set(hostId, { place, ports: new Set() });
    const key = clusterKey(place);
    let cluster = state.clusters.get(key);
    if (!cluster) state.clusters.set(key, (cluster = { place, hosts: new Set() }));
    cluster.hosts.add(hostId);
  }
  for (const port of snapshot.ports) {
    state.ports.set(port.portId, { ...port, securityGroupIds: [...port.securityGroupIds] });
    state.ipsInUse.set(port.ipNum, port.portId);
    state.macsInUse.add(port.mac);
    state.hosts.get(port.hostId)?.ports.add(port.portId);
    for (const sgId of port.securityGroupIds) {
      let members = state.groupMembers.get(sgId);
      if (!members) state.groupMembers.set(sgId, (members = new Set()));
      members.add(port.portId);
    }
  }
  for (const [intentId, record] of snapshot.intents) state.intents.set(intentId, record);
  return state;
}
