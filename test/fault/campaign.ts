/**
 * One fault run: the steady load running, the fault injected at a random moment
 * and held, then healed; the load goes on a little, stops; the system is given
 * time to finish what it was sent, and then judged (verdict.ts). A run may also
 * rebalance while the fault is on: a controller joins and leaves during it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../infra/index.js';
import { check } from '../../services/cli/check.js';
import type { Fault } from './faults.js';
import type { Acked, SteadyLoad } from './load.js';
import { counterByService, counterGrowth, type FaultSystem } from './system.js';
import { judgeRun, oracleUntilClean, type RunVerdict, type StatusLog } from './verdict.js';

/** The agents' own counts of deltas taken out of order (services/nca/hostAgent.ts). */
const AGENT_LATE = 'alcor_nca_goal_states_out_of_order_total';
const AGENT_DISORDER = 'alcor_nca_goal_states_applied_out_of_order_total';
/** …and of deltas whose target's message before them (`prev`) never came. */
const AGENT_MISSED = 'alcor_nca_goal_states_missed_before_total';
const AGENT_OVER_GAP = 'alcor_nca_goal_states_applied_over_gap_total';

/** A rebalancing controller joins this long into a fault and leaves this long after its heal. */
const REBALANCE_OFFSET_MS = 1000;

export interface FaultRun extends Omit<RunVerdict, 'oracle'> {
  fault: string;
  run: number;
  /** What was broken, e.g. the process name. */
  note: string;
  /** A controller joined and left while the fault was on. */
  rebalanced: boolean;
  heldMs: number;
  /** Hosts already diverged when the run began (left so by an earlier run). */
  divergentAtStart: number;
  /**
   * Deltas the agents applied after a newer message of the same VPC, or although
   * a message before them never came (`alcor_nca_goal_states_applied_out_of_order_total`
   * and `…_applied_over_gap_total` grown during the run): the order broken at the
   * agents. Judged: must be 0.
   */
  disorderAtAgents: number;
  /**
   * Deltas whose target's message before them never reached the agent (a goal
   * state lost on the way); each was not applied and its VPC taken again. Shown.
   */
  missedAtAgents: number;
  /**
   * Deltas that reached the agents after a newer message of their VPC (never seen
   * before); each was not applied and its VPC taken again (resync). Shown.
   */
  lateAtAgents: number;
  /** The first lines of the oracle's differences, if any. */
  differences: string[];
  ok: boolean;
}

export interface RunOptions {
  run: number;
  rnd: () => number;
  log: Logger;
  rebalance?: boolean;
  /** Load after the heal, before it stops. */
  tailMs?: number;
  /** Bound on the wait for every acknowledged intent to be finished. */
  settleMs?: number;
  /** Bound on the wait for the oracle to find every host converged. */
  oracleMs?: number;
}

async function pollQuietly(statuses: StatusLog, log: Logger): Promise<void> {
  try {
    await statuses.poll();
  } catch (err) {
    log.debug({ err }, 'STATUS not readable now');
  }
}

/** Waits (bounded) until every intent of `acked` is decided, and finished if accepted. */
export async function settle(
  statuses: StatusLog,
  acked: readonly Acked[],
  boundMs: number,
  log: Logger,
): Promise<void> {
  const until = Date.now() + boundMs;
  for (;;) {
    await pollQuietly(statuses, log);
    const open = acked.filter((a) => {
      const d = statuses.decided.get(a.id);
      return !d || (d.outcome === 'accepted' && !statuses.finished.has(a.id));
    });
    if (open.length === 0 || Date.now() > until) return;
    // Poll every 500 ms, never past the bound.
    await sleep(Math.min(500, Math.max(0, until - Date.now())));
  }
}

export async function runFault(
  system: FaultSystem,
  load: SteadyLoad,
  statuses: StatusLog,
  fault: Fault,
  o: RunOptions,
): Promise<FaultRun> {
  const log = o.log.child({ fault: fault.name, run: o.run });
  await system.ready();
  const start = await check(system.nc, {});
  const counters = [AGENT_DISORDER, AGENT_OVER_GAP, AGENT_LATE, AGENT_MISSED];
  const agentsBefore = await Promise.all(counters.map((c) => counterByService(system, c)));
  const divergentAtStart = new Set([...start.diverged.map((d) => d.hostId), ...start.silent]).size;
  await statuses.skipToEnd();
  const before = load.acked.size;
  load.start();
  await sleep(2000 + o.rnd() * 2000);

  const notes: string[] = [];
  // What the fault itself found wrong (it did not bite, or its own check failed).
  const failed: string[] = [];
  const ctx = {
    system,
    load,
    rnd: o.rnd,
    log,
    note: (w: string) => notes.push(w),
    fail: (why: string) => {
      failed.push(why);
      notes.push(`FAILED: ${why}`);
    },
  };
  const onsetAt = Date.now();
  const heal = await fault.inject(ctx);
  log.info({ notes }, 'fault injected');
  let extra: Promise<void> | undefined;
  let markHealed = (): void => undefined;
  const healed = new Promise<void>((resolve) => (markHealed = resolve));
  let rebalanceFailed = false;
  if (o.rebalance) {
    // The schedule of the rebalance, not a wait for a condition: a controller
    // joins REBALANCE_OFFSET_MS into the fault and leaves as long after the heal.
    extra = (async () => {
      await sleep(REBALANCE_OFFSET_MS);
      const p = await system.addController();
      notes.push(`+${p.name}`);
      await healed;
      await sleep(REBALANCE_OFFSET_MS);
      await system.remove(p);
    })().catch((err: unknown) => {
      rebalanceFailed = true;
      notes.push(`the rebalance failed: ${(err as Error).message.split('\n')[0]}`);
    });
  }
  await sleep(fault.holdMs(system));
  await heal();
  const healedAt = Date.now();
  markHealed();
  log.info('fault healed');
  await sleep(o.tailMs ?? 4000);
  await load.stop();
  await extra;

  const acked = [...load.acked.values()].slice(before);
  await settle(statuses, acked, o.settleMs ?? system.programmedDeadlineMs + 30_000, log);
  await system.ready();
  const oracle = await oracleUntilClean(system.nc, o.oracleMs ?? 60_000);
  await pollQuietly(statuses, log);
  const { oracle: report, ...judged } = await judgeRun({
    nc: system.nc,
    hosts: system.hosts,
    statuses,
    acked,
    order: load.order,
    onsetAt,
    healedAt,
    oracle,
  });
  // At the agents: deltas taken after a newer message of their VPC, never seen
  // before (the agents count them; a killed agent's count before its kill is lost).
  const after = await Promise.all(counters.map((c) => counterByService(system, c)));
  const [disorder, overGap, late, missed] = counters.map((_, i) =>
    counterGrowth(agentsBefore[i]!, after[i]!),
  );
  const verdict = {
    ...judged,
    disorderAtAgents: disorder! + overGap!,
    lateAtAgents: late!,
    missedAtAgents: missed!,
  };
  const ok =
    !rebalanceFailed &&
    failed.length === 0 &&
    verdict.acked > 0 &&
    verdict.inFlight > 0 &&
    verdict.lost === 0 &&
    verdict.appliedTwice === 0 &&
    verdict.orderBroken === 0 &&
    verdict.disorderAtAgents === 0 &&
    verdict.replay === undefined &&
    verdict.unfinished === 0 &&
    verdict.divergentHosts === 0 &&
    verdict.silentHosts === 0;
  return {
    fault: fault.name,
    run: o.run,
    note: notes.join(', '),
    rebalanced: o.rebalance ?? false,
    heldMs: healedAt - onsetAt,
    ...verdict,
    divergentAtStart,
    differences: report.diverged
      .slice(0, 5)
      .map(
        (d) =>
          `${d.hostId}/${d.vpcId}: missing ${d.missing.length}, extra ${d.extra.length}, different ${d.different.length}`,
      )
      .concat(report.silent.length ? [`silent: ${report.silent.slice(0, 5).join(',')}`] : []),
    ok,
  };
}

/** One line per run, for a terminal. */
export function describeRun(r: FaultRun): string {
  return (
    `${r.ok ? '✔' : '✘'} ${r.fault}#${r.run} (${r.note}${r.rebalanced ? ', with a rebalance' : ''}): ` +
    `held ${(r.heldMs / 1000).toFixed(1)} s, ${r.acked} intents acked, ${r.inFlight} in flight; ` +
    `lost ${r.lost}, twice ${r.appliedTwice}, order broken ${r.orderBroken} (at the agents ${r.disorderAtAgents}; ${r.lateAtAgents} late, ${r.missedAtAgents} after a lost one, resynced), ` +
    `unfinished ${r.unfinished}, incomplete ${r.incomplete}${r.incompleteHosts.length ? ` (missing ${r.incompleteHosts.length} hosts: ${r.incompleteHosts.slice(0, 6).join(',')})` : ''}, divergent hosts ${r.divergentHosts} (${r.divergentAtStart} at start), silent ${r.silentHosts}; ` +
    `done ${(r.doneAfterOnsetMs / 1000).toFixed(1)} s after onset, recovery ${(r.recoveryMs / 1000).toFixed(1)} s after heal` +
    (r.unfinishedIds.length ? `; unfinished: ${r.unfinishedIds.join(',')}` : '') +
    (r.replay ? `; REPLAY: ${r.replay}` : '') +
    (r.differences.length ? `; ${r.differences.join('; ')}` : '')
  );
}
