/**
 * The state of one VPC: the fold of its commits. Primary records plus indexes
 * (used IPs and MACs, hosts and clusters, group members) that `evolve` keeps in
 * step so that deciding and projecting stay O(change), not O(VPC size).
 *
 * The fold owns its accumulator: `evolve` updates the state it is given and
 * returns it. Keep a copy (`cloneState`) when you need the state before.
 */
import type { Cidr, SecurityGroupRule, TopologyPlace } from '../../shared/index.js';

export interface SubnetRecord {
  subnetId: string;
  cidr: string;
  block: Cidr;
  gatewayIp: string;
  gateway: number;
  rev: number;
  portCount: number;
  /** Where the next address search starts (offset in the block). */
  nextOffset: number;
}

export interface PortRecord {
  portId: string;
  subnetId: string;
  hostId: string;
  ip: string;
  ipNum: number;
  mac: string;
  securityGroupIds: string[];
  rev: number;
}

export interface GroupRecord {
  sgId: string;
  rules: SecurityGroupRule[];
  rev: number;
}

export interface RouteRecord {
  destination: string;
  nextHop: string;
  rev: number;
}

export interface HostEntry {
  place: TopologyPlace;
  ports: Set<string>;
}

export interface ClusterEntry {
  place: TopologyPlace;
  hosts: Set<string>;
}

export interface IntentRecord {
  revision: number;
  outcome: 'accepted' | 'rejected';
  error?: { code: string; message: string; path?: string };
}

export interface VpcState {
  vpcId: string;
  status: 'absent' | 'active' | 'deleted';
  /** EVENTS sequence of the last commit; 0 before any. */
  revision: number;
  /** INTENTS sequence of the last decided intent. */
  cursor: number;
  cidr: string;
  block: Cidr;
  vni: number;
  vpcRev: number;
  subnets: Map<string, SubnetRecord>;
  ports: Map<string, PortRecord>;
  groups: Map<string, GroupRecord>;
  routes: Map<string, RouteRecord>;
  // indexes, derived from the records above
  hosts: Map<string, HostEntry>;
  clusters: Map<string, ClusterEntry>;
  ipsInUse: Map<number, string>;
  macsInUse: Set<string>;
  groupMembers: Map<string, Set<string>>;
  /** Recent intent ids and their outcome, for idempotent re-sends (bounded). */
  intents: Map<string, IntentRecord>;
}

/** How many intent ids a VPC remembers for idempotency (oldest forgotten first). */
export const REMEMBERED_INTENTS = 100_000;

export function initialState(vpcId: string): VpcState {
  return {
    vpcId,
    status: 'absent',
    revision: 0,
    cursor: 0,
    cidr: '',
    block: { network: 0, prefix: 0 },
    vni: 0,
    vpcRev: 0,
    subnets: new Map(),
    ports: new Map(),
    groups: new Map(),
    routes: new Map(),
    hosts: new Map(),
    clusters: new Map(),
    ipsInUse: new Map(),
    macsInUse: new Set(),
    groupMembers: new Map(),
    intents: new Map(),
  };
}

/** The VPC's placement weight: its ports plus the hosts they sit on (DESIGN §5). */
export function loadOf(state: VpcState): number {
  return state.ports.size + state.hosts.size;
}
