/**
 * The convergence oracle (DESIGN §7): for every host, the state its agent applied
 * must equal the projection of the EVENTS log for that host. The comparison is
 * pure; `foldEventLog` rebuilds every VPC's state from EVENTS to feed it.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { createJetStreamEventLog } from '../../infra/index.js';
import {
  fnv1a32,
  isSkipped,
  streams,
  subjects,
  type ErrorDetail,
  type NcaStateReply,
} from '../../shared/index.js';
import { nca, vpc } from '../../actors/index.js';

export interface Divergence {
  hostId: string;
  vpcId: string;
  /** Resources the log says the host must have and it lacks. */
  missing: string[];
  /** Resources it has that it must not. */
  extra: string[];
  /** Resources it has at another revision or value. */
  different: Array<{ key: string; expectedRev: number; actualRev: number }>;
}

/** A resource as the oracle compares it: its revision and a digest of its value. */
export interface ResourceDigest {
  rev: number;
  digest: string;
}
/** VPC → resource key → digest: what one host holds, or must hold. */
export type HostDigest = Map<string, Map<string, ResourceDigest>>;

const utf8 = new TextEncoder();
export const digestOf = (value: unknown): string =>
  fnv1a32(utf8.encode(JSON.stringify(value))).toString(36);

/** host → what the log says the host must hold (`only`: for those hosts alone). */
export function expectedState(
  states: Iterable<vpc.VpcState>,
  only?: ReadonlySet<string>,
): Map<string, HostDigest> {
  const out = new Map<string, HostDigest>();
  for (const state of states) {
    for (const hostId of state.hosts.keys()) {
      if (only && !only.has(hostId)) continue;
      const resources = new Map<string, ResourceDigest>();
      for (const op of vpc.hostResources(state, hostId)) {
        if (op.op === 'upsert') resources.set(op.key, { rev: op.rev, digest: digestOf(op.value) });
      }
      if (resources.size === 0) continue;
      let vpcs = out.get(hostId);
      if (!vpcs) out.set(hostId, (vpcs = new Map<string, Map<string, ResourceDigest>>()));
      vpcs.set(state.vpcId, resources);
    }
  }
  return out;
}

/** What a host's agent holds (optionally only some VPCs), in the oracle's form. */
export function hostDigest(model: nca.HostModel, vpcIds?: readonly string[]): HostDigest {
  const out: HostDigest = new Map();
  for (const vpcId of vpcIds ?? model.vpcs.keys()) {
    const live = nca.liveResources(model, vpcId);
    if (live.size === 0) continue;
    const resources = new Map<string, ResourceDigest>();
    for (const [key, r] of live) resources.set(key, { rev: r.rev, digest: digestOf(r.value) });
    out.set(vpcId, resources);
  }
  return out;
}

/** Every difference between what a host holds and what it must hold, per VPC (`only`: those VPCs). */
export function compareHost(
  hostId: string,
  want: HostDigest | undefined,
  have: HostDigest,
  only?: ReadonlySet<string>,
): Divergence[] {
  const out: Divergence[] = [];
  const vpcIds = new Set([...(want?.keys() ?? []), ...have.keys()]);
  for (const vpcId of vpcIds) {
    if (only && !only.has(vpcId)) continue;
    const wanted = want?.get(vpcId) ?? new Map<string, ResourceDigest>();
    const held = have.get(vpcId) ?? new Map<string, ResourceDigest>();
    const d: Divergence = { hostId, vpcId, missing: [], extra: [], different: [] };
    for (const [key, w] of wanted) {
      const h = held.get(key);
      if (!h) d.missing.push(key);
      else if (h.rev !== w.rev || h.digest !== w.digest)
        d.different.push({ key, expectedRev: w.rev, actualRev: h.rev });
    }
    for (const key of held.keys()) if (!wanted.has(key)) d.extra.push(key);
    if (d.missing.length + d.extra.length + d.different.length > 0) out.push(d);
  }
  return out;
}

/**
 * Every difference between the hosts' models and the log's projection (empty:
 * converged). Only the models' hosts are projected: a VPC of many hosts costs the
 * hosts given, not all of its own.
 */
export function diverging(
  states: Iterable<vpc.VpcState>,
  models: Iterable<nca.HostModel>,
): Divergence[] {
  const list = [...models];
  const expected = expectedState(states, new Set(list.map((m) => m.hostId)));
  return list.flatMap((model) =>
    compareHost(model.hostId, expected.get(model.hostId), hostDigest(model)),
  );
}

/** HostDigest on the wire (`alcor.nca.state.<host>`): `{vpcId: {key: [rev, digest]}}`. */
export type HostDigestWire = NcaStateReply['vpcs'];

export function encodeHostDigest(digest: HostDigest): HostDigestWire {
  const out: HostDigestWire = {};
  for (const [vpcId, resources] of digest) {
    out[vpcId] = Object.fromEntries([...resources].map(([k, r]) => [k, [r.rev, r.digest]]));
  }
  return out;
}

export function decodeHostDigest(wire: HostDigestWire): HostDigest {
  const out: HostDigest = new Map();
  for (const [vpcId, resources] of Object.entries(wire)) {
    out.set(
      vpcId,
      new Map(Object.entries(resources).map(([k, [rev, digest]]) => [k, { rev, digest }])),
    );
  }
  return out;
}

/** A message of EVENTS that is not a commit (passed over by the fold, as by the actors). */
export interface SkippedEvent {
  vpcId: string;
  revision: number;
  error: ErrorDetail;
}

/** Every VPC's state folded from EVENTS (optionally only some VPCs). */
export async function foldEventLog(
  nc: NatsConnection,
  options: { vpcIds?: readonly string[]; onSkipped?: (s: SkippedEvent) => void } = {},
): Promise<vpc.VpcState[]> {
  const jsm = await jetstreamManager(nc);
  let vpcIds = options.vpcIds;
  if (!vpcIds) {
    const info = await jsm.streams.info(streams.events, { subjects_filter: subjects.eventsAll });
    vpcIds = Object.keys(info.state.subjects ?? {}).map((s) => s.slice(s.indexOf('.') + 1));
  }
  const log = await createJetStreamEventLog(nc);
  const states: vpc.VpcState[] = [];
  for (const vpcId of vpcIds) {
    let state = vpc.initialState(vpcId);
    for await (const entry of log.read(vpcId, 0)) {
      if (!isSkipped(entry)) state = vpc.evolve(state, entry);
      else {
        state = vpc.skip(state, entry.revision);
        options.onSkipped?.({ vpcId, revision: entry.revision, error: entry.skipped });
      }
    }
    states.push(state);
  }
  return states;
}
