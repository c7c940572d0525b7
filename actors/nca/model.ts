/**
 * A host's dataplane as its agent (NCA) holds it: per VPC, the resources it has
 * been told about. `apply` is idempotent and monotonic:
 *  - an op takes effect only if its message's revision is newer than the one that
 *    last touched that resource (re-applying a message, or an older one after a
 *    newer one, changes nothing);
 *  - a `full` message at revision r describes the VPC as of r: resources it omits
 *    that were last touched before r are removed, and messages at or below r are
 *    ignored from then on (the `floor`). An empty full removes the VPC.
 * Deleted resources are kept as tombstones so that a late upsert cannot revive them,
 * until a full message's floor passes them (nothing at or below the floor applies).
 * Each message costs its own ops, not the VPC's size: the live count is kept as
 * ops change it (a VPC with a long history of deleted ports stays as cheap).
 */
import type { GoalStateMessage, GoalStateOp, ResourceKind } from '../../shared/index.js';

export interface ResourceEntry {
  kind: ResourceKind;
  /** The revision that last changed the resource (from the op). */
  rev: number;
  /** The revision of the message that last touched it here. */
  seen: number;
  value: unknown;
  deleted: boolean;
}

export interface VpcModel {
  floor: number;
  /** Highest message revision applied. */
  revision: number;
  resources: Map<string, ResourceEntry>;
  /** Resources not deleted (the host holds the VPC while this is above 0). */
  live: number;
}

export interface HostModel {
  hostId: string;
  vpcs: Map<string, VpcModel>;
}

export interface ApplyResult {
  /** Ops that changed something. */
  changed: number;
  /** Ops ignored as already applied or older. */
  ignored: number;
}

export function emptyHostModel(hostId: string): HostModel {
  return { hostId, vpcs: new Map() };
}

function vpcModel(model: HostModel, vpcId: string): VpcModel {
  let vpc = model.vpcs.get(vpcId);
  if (!vpc) model.vpcs.set(vpcId, (vpc = { floor: 0, revision: 0, resources: new Map(), live: 0 }));
  return vpc;
}

function applyOp(vpc: VpcModel, op: GoalStateOp, revision: number): boolean {
  const current = vpc.resources.get(op.key);
  if (current && current.seen >= revision) return false;
  const upsert = op.op === 'upsert';
  const wasLive = current !== undefined && !current.deleted;
  vpc.live += Number(upsert) - Number(wasLive);
  vpc.resources.set(op.key, {
    kind: op.kind,
    rev: op.rev,
    seen: revision,
    value: upsert ? op.value : null,
    deleted: !upsert,
  });
  // A delete of something absent or already deleted only records the tombstone.
  return upsert || wasLive;
}

/** Applies one goal-state message to the host's model (in place). */
export function apply(model: HostModel, message: GoalStateMessage): ApplyResult {
  const vpc = vpcModel(model, message.vpcId);
  const result: ApplyResult = { changed: 0, ignored: 0 };
  if (message.revision <= vpc.floor) {
    result.ignored = message.ops.length;
    return result;
  }
  for (const op of message.ops) {
    if (applyOp(vpc, op, message.revision)) result.changed += 1;
    else result.ignored += 1;
  }
  if (message.mode === 'full') {
    const listed = new Set(message.ops.map((op) => op.key));
    for (const [key, entry] of vpc.resources) {
      // Newer than the full state, or in it: kept.
      if (entry.seen > message.revision || (listed.has(key) && !entry.deleted)) continue;
      // Gone as of the full state. No tombstone is needed at or below the new
      // floor, since no message there applies any more.
      if (!entry.deleted) {
        vpc.live -= 1;
        result.changed += 1;
      }
      vpc.resources.delete(key);
    }
    vpc.floor = message.revision;
  }
  vpc.revision = Math.max(vpc.revision, message.revision);
  return result;
}

/** The live resources of one VPC on this host: key → {kind, rev, value}. */
export function liveResources(
  model: HostModel,
  vpcId: string,
): Map<string, { kind: ResourceKind; rev: number; value: unknown }> {
  const out = new Map<string, { kind: ResourceKind; rev: number; value: unknown }>();
  const vpc = model.vpcs.get(vpcId);
  if (!vpc) return out;
  for (const [key, entry] of vpc.resources) {
    if (!entry.deleted) out.set(key, { kind: entry.kind, rev: entry.rev, value: entry.value });
  }
  return out;
}

/** Does the host currently hold any of the VPC? */
export function hostsVpc(model: HostModel, vpcId: string): boolean {
  return (model.vpcs.get(vpcId)?.live ?? 0) > 0;
}
