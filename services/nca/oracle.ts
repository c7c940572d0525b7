/**
 * The convergence oracle (DESIGN §7): for every host, the state its agent applied
 * must equal the projection of the EVENTS log for that host. The comparison is
 * pure; `foldEventLog` rebuilds every VPC's state from EVENTS to feed it.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { createJetStreamEventLog } from '../../infra/index.js';
import { streams, subjects } from '../../shared/index.js';
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

type Resources = Map<string, { rev: number; value: unknown }>;

/** host → VPC → what the log says the host must hold. */
export function expectedState(states: Iterable<vpc.VpcState>): Map<string, Map<string, Resources>> {
  const out = new Map<string, Map<string, Resources>>();
  for (const state of states) {
    for (const hostId of state.hosts.keys()) {
      const resources: Resources = new Map();
      for (const op of vpc.hostResources(state, hostId)) {
        if (op.op === 'upsert') resources.set(op.key, { rev: op.rev, value: op.value });
      }
      if (resources.size === 0) continue;
      let vpcs = out.get(hostId);
      if (!vpcs) out.set(hostId, (vpcs = new Map<string, Resources>()));
      vpcs.set(state.vpcId, resources);
    }
  }
  return out;
}

/** Every difference between the hosts' models and the log's projection (empty: converged). */
export function diverging(
  states: Iterable<vpc.VpcState>,
  models: Iterable<nca.HostModel>,
): Divergence[] {
  const expected = expectedState(states);
  const out: Divergence[] = [];
  for (const model of models) {
    const hostId = model.hostId;
    const want = expected.get(hostId) ?? new Map<string, Resources>();
    const vpcIds = new Set([...want.keys(), ...model.vpcs.keys()]);
    for (const vpcId of vpcIds) {
      const wanted: Resources =
        want.get(vpcId) ?? new Map<string, { rev: number; value: unknown }>();
      const have = nca.liveResources(model, vpcId);
      const d: Divergence = { hostId, vpcId, missing: [], extra: [], different: [] };
      for (const [key, w] of wanted) {
        const h = have.get(key);
        if (!h) d.missing.push(key);
        else if (h.rev !== w.rev || JSON.stringify(h.value) !== JSON.stringify(w.value))
          d.different.push({ key, expectedRev: w.rev, actualRev: h.rev });
      }
      for (const key of have.keys()) if (!wanted.has(key)) d.extra.push(key);
      if (d.missing.length + d.extra.length + d.different.length > 0) out.push(d);
    }
  }
  return out;
}

/** Every VPC's state folded from EVENTS (optionally only some VPCs). */
export async function foldEventLog(
  nc: NatsConnection,
  options: { vpcIds?: readonly string[] } = {},
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
    for await (const recorded of log.read(vpcId, 0)) state = vpc.evolve(state, recorded);
    states.push(state);
  }
  return states;
}
