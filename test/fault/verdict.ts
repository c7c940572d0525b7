/**
 * The judge of one fault run, from what a user can observe: EVENTS (every
 * acknowledged intent decided exactly once, in its VPC's order, exactly as the pure
 * decider replays INTENTS), STATUS (when each intent was finished: rejected,
 * programmed or incomplete) and the convergence oracle over the running agents.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { readStreamRange } from '../../infra/index.js';
import { StatusSchema, streams, type EventCommit, type HostRecord } from '../../shared/index.js';
import { check, type CheckReport } from '../../services/cli/check.js';
import { judge, readCommits } from '../support/workload.js';
import type { Acked } from './load.js';

const decoder = new TextDecoder();

/** When each intent was decided and finished, from STATUS (read on incrementally). */
export class StatusLog {
  private nextSeq = 1;
  readonly decided = new Map<string, { outcome: string; at: number }>();
  /** Rejected: when decided; accepted: when programmed or incomplete. */
  readonly finished = new Map<string, { outcome: string; at: number; missing?: string[] }>();

  constructor(private readonly nc: NatsConnection) {}

  /** Starts after what STATUS holds now (statuses of earlier runs are not read again). */
  async skipToEnd(): Promise<void> {
    const info = await (await jetstreamManager(this.nc)).streams.info(streams.status);
    this.nextSeq = info.state.last_seq + 1;
  }

  async poll(): Promise<void> {
    for await (const m of readStreamRange(this.nc, streams.status, { fromSeq: this.nextSeq })) {
      this.nextSeq = m.seq + 1;
      const parsed = StatusSchema.safeParse(JSON.parse(decoder.decode(m.data)));
      if (!parsed.success) continue;
      const s = parsed.data;
      const at = m.time.getTime();
      if (s.outcome === 'accepted' || s.outcome === 'rejected') {
        if (!this.decided.has(s.intentId)) this.decided.set(s.intentId, { outcome: s.outcome, at });
        if (s.outcome === 'rejected' && !this.finished.has(s.intentId))
          this.finished.set(s.intentId, { outcome: s.outcome, at });
      } else if (!this.finished.has(s.intentId))
        this.finished.set(s.intentId, {
          outcome: s.outcome,
          at,
          ...(s.hosts?.missing ? { missing: s.hosts.missing } : {}),
        });
    }
  }
}

export interface RunVerdict {
  /** Intents acknowledged to the client during the run. */
  acked: number;
  /** In flight at the fault: sent before it healed and not finished when it began. */
  inFlight: number;
  /** Acknowledged, and no commit in EVENTS: lost. */
  lost: number;
  /** Intents with more than one commit in EVENTS. */
  appliedTwice: number;
  /** VPCs whose commits are not in the order their intents were acknowledged. */
  orderBroken: number;
  /** The pure decider replaying INTENTS disagrees with EVENTS (first difference). */
  replay: string | undefined;
  /** Accepted intents with no programmed/incomplete status when the run was judged. */
  unfinished: number;
  /** A few of them. */
  unfinishedIds: string[];
  /** In-flight intents that ended `incomplete` (their hosts not all acked by the deadline). */
  incomplete: number;
  /** The hosts those incomplete intents named as missing (a few). */
  incompleteHosts: string[];
  /** Hosts the oracle found different from the log once the system was quiet. */
  divergentHosts: number;
  /** Hosts whose agent did not answer the oracle. */
  silentHosts: number;
  /** Fault onset → the last in-flight intent finished. */
  doneAfterOnsetMs: number;
  /** Fault healed → the last in-flight intent finished (0 when done before the heal). */
  recoveryMs: number;
  oracle: CheckReport;
}

/** The commits of EVENTS, per intent id. */
async function commitsByIntent(nc: NatsConnection): Promise<Map<string, EventCommit[]>> {
  const out = new Map<string, EventCommit[]>();
  for (const { commit } of await readCommits(nc)) {
    const list = out.get(commit.intentId) ?? [];
    list.push(commit);
    out.set(commit.intentId, list);
  }
  return out;
}

/** Polls the oracle until it is clean or `timeoutMs` passes; the last report. */
export async function oracleUntilClean(
  nc: NatsConnection,
  timeoutMs: number,
): Promise<CheckReport> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const report = await check(nc, {});
    if (report.clean || Date.now() > deadline) return report;
    // Poll every second, never past the deadline.
    await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(0, deadline - Date.now()))));
  }
}

export async function judgeRun(input: {
  nc: NatsConnection;
  hosts: readonly HostRecord[];
  statuses: StatusLog;
  /** The intents acknowledged during this run, and each VPC's order. */
  acked: readonly Acked[];
  order: ReadonlyMap<string, readonly string[]>;
  onsetAt: number;
  healedAt: number;
  oracle: CheckReport;
}): Promise<RunVerdict> {
  const { acked, statuses, onsetAt, healedAt } = input;
  const commits = await commitsByIntent(input.nc);
  let lost = 0;
  let appliedTwice = 0;
  for (const a of acked) {
    const n = commits.get(a.id)?.length ?? 0;
    if (n === 0) lost += 1;
    if (n > 1) appliedTwice += 1;
  }
  // Per VPC: the cursor (INTENTS sequence) of each intent's commit must rise in the
  // order the client's acks came back.
  const vpcs = new Set(acked.map((a) => a.vpcId));
  let orderBroken = 0;
  for (const vpcId of vpcs) {
    const cursors = (input.order.get(vpcId) ?? []).flatMap((id) =>
      (commits.get(id) ?? []).slice(0, 1).map((c) => c.cursor),
    );
    if (cursors.some((c, i) => i > 0 && c <= cursors[i - 1]!)) orderBroken += 1;
  }
  let replay: string | undefined;
  try {
    await judge(input.nc, [...vpcs], input.hosts);
  } catch (err) {
    replay = (err as Error).message.slice(0, 1000);
  }

  const unfinishedIds = acked
    .filter(
      (a) => statuses.decided.get(a.id)?.outcome === 'accepted' && !statuses.finished.has(a.id),
    )
    .map((a) => a.id);
  const inFlight = acked.filter((a) => {
    const f = statuses.finished.get(a.id);
    return a.sentAt <= healedAt && (!f || f.at > onsetAt);
  });
  let doneAt = onsetAt;
  let incomplete = 0;
  const missing = new Set<string>();
  for (const a of inFlight) {
    const f = statuses.finished.get(a.id);
    if (!f) {
      doneAt = Infinity;
      continue;
    }
    if (f.outcome === 'incomplete') {
      incomplete += 1;
      for (const h of f.missing ?? []) missing.add(h);
    }
    doneAt = Math.max(doneAt, f.at);
  }
  const oracle = input.oracle;
  return {
    acked: acked.length,
    inFlight: inFlight.length,
    lost,
    appliedTwice,
    orderBroken,
    replay,
    unfinished: unfinishedIds.length,
    unfinishedIds: unfinishedIds.slice(0, 5),
    incomplete,
    incompleteHosts: [...missing].sort(),
    divergentHosts: new Set(oracle.diverged.map((d) => d.hostId)).size,
    silentHosts: oracle.silent.length,
    doneAfterOnsetMs: doneAt - onsetAt,
    recoveryMs: Math.max(0, doneAt - healedAt),
    oracle,
  };
}
