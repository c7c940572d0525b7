/**
 * `alcor check [--vpc v | --host h] [--full]`: the convergence oracle (DESIGN §7)
 * over the running fleet. Every VPC (or one) is loaded as its owner loads it — its
 * latest snapshot (KV `vpc-snapshots`), then the EVENTS commits after it; a
 * snapshot that cannot be used, or `--full`, folds the VPC from revision 0 — up
 * to 16 VPCs at once, into what each host must hold; every registered host's agent
 * (or one) is asked what it holds (`alcor.nca.state.<host>`, as digests); any
 * difference is listed — missing, extra, or at another revision or value. Hosts
 * whose agent does not answer are listed apart. Run it when the system is quiet:
 * an intent in flight shows as a difference until its hosts applied it.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { createJetStreamEventLog, createKvSnapshotStore } from '../../infra/index.js';
import {
  bindingLabel,
  kvBuckets,
  streams,
  subjects,
  type SnapshotStore,
} from '../../shared/index.js';
import { hydrateVpc } from '../controller/vpcs/hydration.js';
import {
  compareHost,
  decodeHostDigest,
  expectedState,
  type Divergence,
  type HostDigest,
  type HostDigestWire,
  type SkippedEvent,
} from '../nca/oracle.js';
import { checkId, lastRevision } from './history.js';
import { registeredHosts } from './topology.js';
import { few, table } from './output.js';

/** VPCs loaded at once. */
export const FOLD_CONCURRENCY = 16;

export interface FoldSummary {
  /** `snapshots`: each VPC from its snapshot and the commits after; `full`: all from revision 0. */
  mode: 'snapshots' | 'full';
  /** VPCs loaded from a snapshot (and the commits after it). */
  fromSnapshot: number;
  /** VPCs folded from revision 0 (no snapshot, an unusable one, or `full`). */
  fromStart: number;
  /** EVENTS entries read and folded, over all VPCs. */
  entries: number;
  /** Snapshots that could not be used: those VPCs were folded from revision 0. */
  unusable: Array<{ vpcId: string; reason: string }>;
  /** Why no snapshot was read at all (the bucket is missing or unreadable), if so. */
  snapshotsUnavailable?: string;
  ms: number;
}

/** What the log says each host must hold (host → VPC → resources), and how it was folded. */
export interface Expected {
  expected: Map<string, HostDigest>;
  vpcs: number;
  fold: FoldSummary;
  /** Messages in EVENTS that are not commits, of the entries read. */
  poison: SkippedEvent[];
}

/** Every VPC id EVENTS has a subject of. */
async function allVpcIds(nc: NatsConnection): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(streams.events, { subjects_filter: subjects.eventsAll });
  return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(s.indexOf('.') + 1));
}

/**
 * What every VPC (or those given) says each host (or those given) must hold:
 * each VPC loaded as its owner loads it (snapshot, then the commits after), or
 * with `full` from revision 0; `concurrency` VPCs at once. A VPC's state is
 * dropped once its hosts' digests are taken.
 */
export async function expectedFromLog(
  nc: NatsConnection,
  options: {
    vpcIds?: readonly string[];
    hostIds?: ReadonlySet<string>;
    full?: boolean;
    concurrency?: number;
  } = {},
): Promise<Expected> {
  const started = performance.now();
  const vpcIds = options.vpcIds ?? (await allVpcIds(nc));
  const log = await createJetStreamEventLog(nc);
  let snapshots: SnapshotStore | undefined;
  let snapshotsUnavailable: string | undefined;
  if (!options.full) {
    try {
      // Opening a bucket does not look at it: the stream is asked once here, so
      // that a missing bucket is said once rather than as every VPC's snapshot.
      await (await jetstreamManager(nc)).streams.info(`KV_${kvBuckets.vpcSnapshots}`);
      snapshots = await createKvSnapshotStore(nc);
    } catch (err) {
      snapshotsUnavailable = `KV ${kvBuckets.vpcSnapshots} could not be read (${(err as Error).message})`;
    }
  }
  const expected = new Map<string, HostDigest>();
  const poison: SkippedEvent[] = [];
  const fold: FoldSummary = {
    mode: options.full ? 'full' : 'snapshots',
    fromSnapshot: 0,
    fromStart: 0,
    entries: 0,
    unusable: [],
    ...(snapshotsUnavailable ? { snapshotsUnavailable } : {}),
    ms: 0,
  };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < vpcIds.length) {
      const vpcId = vpcIds[next++]!;
      let restored = false;
      const { state } = await hydrateVpc({ log, ...(snapshots ? { snapshots } : {}) }, vpcId, {
        restored: () => (restored = true),
        unusable: (err) =>
          fold.unusable.push({
            vpcId,
            reason: err instanceof Error ? err.message : String(err),
          }),
        before: () => (fold.entries += 1),
        skipped: (s) => poison.push({ vpcId, revision: s.revision, error: s.skipped }),
      });
      if (restored) fold.fromSnapshot += 1;
      else fold.fromStart += 1;
      for (const [hostId, vpcs] of expectedState([state], options.hostIds)) {
        let held = expected.get(hostId);
        if (!held) expected.set(hostId, (held = new Map() as HostDigest));
        for (const [id, resources] of vpcs) held.set(id, resources);
      }
    }
  };
  await Promise.all(
    Array.from(
      { length: Math.min(options.concurrency ?? FOLD_CONCURRENCY, vpcIds.length) },
      worker,
    ),
  );
  fold.unusable.sort((a, b) => a.vpcId.localeCompare(b.vpcId));
  poison.sort((a, b) => a.vpcId.localeCompare(b.vpcId) || a.revision - b.revision);
  fold.ms = Math.round(performance.now() - started);
  return { expected, vpcs: vpcIds.length, fold, poison };
}

export interface CheckReport {
  scope: string;
  vpcs: number;
  hosts: number;
  converged: number;
  diverged: Array<Divergence & { binding: string }>;
  /** Hosts whose agent did not answer. */
  silent: string[];
  /** Messages in EVENTS that are not commits (passed over: nobody's append). */
  poison: SkippedEvent[];
  /** How the VPCs were folded (from snapshots, or from revision 0). */
  fold: FoldSummary;
  clean: boolean;
}

const encoder = new TextEncoder();
/** Agents asked at once. */
const CONCURRENCY = 64;

export async function check(
  nc: NatsConnection,
  options: { vpcId?: string; hostId?: string; timeoutMs?: number; full?: boolean },
): Promise<CheckReport> {
  if (options.vpcId) await lastRevision(nc, options.vpcId);
  if (options.hostId) checkId(options.hostId, 'host');
  const hosts = await registeredHosts(nc, options.hostId);
  const { expected, vpcs, fold, poison } = await expectedFromLog(nc, {
    ...(options.vpcId ? { vpcIds: [options.vpcId] } : {}),
    ...(options.hostId ? { hostIds: new Set([options.hostId]) } : {}),
    ...(options.full ? { full: true } : {}),
  });
  const only = options.vpcId ? new Set([options.vpcId]) : undefined;
  const body = encoder.encode(JSON.stringify(options.vpcId ? { vpcIds: [options.vpcId] } : {}));

  const diverged: CheckReport['diverged'] = [];
  const silent: string[] = [];
  let converged = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < hosts.length) {
      const host = hosts[next++]!;
      let wire: HostDigestWire;
      try {
        const reply = await nc.request(subjects.ncaState(host.hostId), body, {
          timeout: options.timeoutMs ?? 3000,
        });
        wire = reply.json<{ vpcs: HostDigestWire }>().vpcs;
      } catch {
        silent.push(host.hostId);
        continue;
      }
      const found = compareHost(
        host.hostId,
        expected.get(host.hostId),
        decodeHostDigest(wire),
        only,
      );
      if (found.length === 0) converged += 1;
      for (const d of found) diverged.push({ ...d, binding: bindingLabel(host) });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  diverged.sort((a, b) => a.hostId.localeCompare(b.hostId) || a.vpcId.localeCompare(b.vpcId));
  silent.sort();
  return {
    scope: options.vpcId
      ? `VPC ${options.vpcId}`
      : options.hostId
        ? `host ${options.hostId}`
        : 'all',
    vpcs,
    hosts: hosts.length,
    converged,
    diverged,
    silent,
    poison,
    fold,
    clean: diverged.length === 0 && silent.length === 0,
  };
}

export function renderCheck(r: CheckReport): string {
  const f = r.fold;
  const how =
    f.mode === 'full'
      ? 'folded from revision 0'
      : `loaded: ${f.fromSnapshot} from a snapshot and the commits after it, ${f.fromStart} from revision 0`;
  const lines = [
    `oracle over ${r.scope}: ${r.vpcs} VPC(s) ${how} (${f.entries} EVENTS entries, ${f.ms} ms); ${r.hosts} host(s) asked`,
    `${r.converged} host(s) converged, ${new Set(r.diverged.map((d) => d.hostId)).size} diverged, ${r.silent.length} did not answer`,
  ];
  if (r.diverged.length > 0)
    lines.push(
      table(
        ['HOST', 'BINDING', 'VPC', 'MISSING', 'EXTRA', 'DIFFERENT'],
        r.diverged.map((d) => [
          d.hostId,
          d.binding,
          d.vpcId,
          few(d.missing),
          few(d.extra),
          few(d.different.map((x) => `${x.key}@${x.actualRev}≠${x.expectedRev}`)),
        ]),
      ),
    );
  if (r.silent.length > 0)
    lines.push(`no agent answered for: ${few(r.silent)} (is the NCA fleet running? npm run nca)`);
  if (f.snapshotsUnavailable)
    lines.push(
      `warning: no snapshot read: ${f.snapshotsUnavailable}; every VPC folded from revision 0`,
    );
  for (const u of f.unusable)
    lines.push(
      `warning: the snapshot of ${u.vpcId} is unusable (${u.reason.slice(0, 120)}); folded from revision 0 instead`,
    );
  for (const p of r.poison)
    lines.push(
      `warning: evt.${p.vpcId} at sequence ${p.revision} is not a commit (${p.error.code}: ${p.error.message.slice(0, 120)}); the VPC's actor and this check pass over it`,
    );
  lines.push(r.clean ? 'CLEAN: every host holds exactly what the log says' : 'NOT CLEAN');
  return lines.join('\n');
}
