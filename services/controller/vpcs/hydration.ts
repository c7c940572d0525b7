/**
 * A VPC's state as its owner loads it (docs/controller.md, "hydrate"): the latest
 * snapshot from KV `vpc-snapshots`, then the EVENTS entries after its revision.
 * A snapshot that cannot be used (unreadable, another format, another VPC's) is
 * passed over and the log is folded from revision 0 — always correct, only
 * slower. The VPC lane hydrates with it, and `alcor check` folds with it, so the
 * oracle sees exactly the state an owner would load.
 */
import {
  isSkipped,
  type EventCommit,
  type EventLog,
  type Recorded,
  type SnapshotStore,
  type Skipped,
} from '../../../shared/index.js';
import { vpc } from '../../../actors/index.js';

export interface VpcSources {
  log: EventLog;
  /** Absent: no snapshots (the log from revision 0). */
  snapshots?: SnapshotStore;
}

/** What a load observes on its way; the state given is the one being folded (in place). */
export interface HydrationHooks {
  /** A snapshot was restored at this revision. */
  restored?: (revision: number) => void;
  /** The VPC has a snapshot that cannot be used: the log is folded from revision 0. */
  unusable?: (err: unknown) => void;
  /** Before each entry after the snapshot is folded (the state is as of the entry before). */
  before?: (entry: Recorded<EventCommit> | Skipped, state: vpc.VpcState) => void;
  /** A commit, just folded. */
  folded?: (entry: Recorded<EventCommit>, state: vpc.VpcState) => void;
  /** A message of EVENTS that is not a commit: passed over (only its revision counts). */
  skipped?: (entry: Skipped) => void;
}

export interface Hydrated {
  state: vpc.VpcState;
  /** The snapshot's revision the fold started after (0: from the start). */
  from: number;
}

/** The VPC's latest snapshot as a state; `unusable` with why if it has one that cannot be used. */
export async function restoreSnapshot(
  snapshots: SnapshotStore,
  vpcId: string,
): Promise<{ state: vpc.VpcState } | { unusable: unknown } | undefined> {
  try {
    const found = await snapshots.load(vpcId);
    if (!found) return undefined;
    const snapshot = JSON.parse(found.text) as vpc.VpcSnapshot;
    if (snapshot.format !== vpc.SNAPSHOT_FORMAT || snapshot.vpcId !== vpcId) {
      throw new Error(`format ${snapshot.format} of ${snapshot.vpcId}`);
    }
    return { state: vpc.fromSnapshot(snapshot) };
  } catch (err) {
    return { unusable: err };
  }
}

/** Loads the VPC: its snapshot (unless `fromStart`), then the log after it. */
export async function hydrateVpc(
  sources: VpcSources,
  vpcId: string,
  hooks: HydrationHooks = {},
  options: { fromStart?: boolean } = {},
): Promise<Hydrated> {
  const restored =
    sources.snapshots && !options.fromStart
      ? await restoreSnapshot(sources.snapshots, vpcId)
      : undefined;
  let state = vpc.initialState(vpcId);
  if (restored && 'state' in restored) {
    state = restored.state;
    hooks.restored?.(state.revision);
  } else if (restored) {
    hooks.unusable?.(restored.unusable);
  }
  // A snapshot is only taken once its revision is out.
  const from = state.revision;
  for await (const entry of sources.log.read(vpcId, from)) {
    hooks.before?.(entry, state);
    if (isSkipped(entry)) {
      state = vpc.skip(state, entry.revision);
      hooks.skipped?.(entry);
      continue;
    }
    state = vpc.evolve(state, entry);
    hooks.folded?.(entry, state);
  }
  return { state, from };
}
