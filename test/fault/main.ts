/**
 * The fault suite, long version: `npm run fault -- [options]`. Every fault is run
 * several times under a steady load (on one nats-server, and the cluster faults on a
 * three-node NATS cluster), every other run with a rebalance on top (a controller
 * joins and leaves while the fault is on). Writes docs/bench/reliability.json and
 * the table of docs/reliability.md; exits 1 if any run lost, duplicated or
 * reordered an intent, or left a host diverged.
 */
import { createLogger, onShutdown, runDir } from '../../infra/index.js';
import { prng } from '../../shared/index.js';
import { fmt, machine, pct, toolArgs, wholeArg, writeReport } from '../bench/report.js';
import { describeRun, runFault, type FaultRun } from './campaign.js';
import { FAULTS, faultsFor } from './faults.js';
import { SteadyLoad } from './load.js';
import { startFaultSystem, type FaultSystem } from './system.js';
import { StatusLog } from './verdict.js';

/** The faults run again on a cluster that syncs every write (what power loss would need). */
const SYNC_ALWAYS_FAULTS = ['lose-nats-node', 'bounce-nats-nodes', 'partition-nats-node'];

const USAGE = `Usage: npm run fault -- [options]

  --runs <n>          runs per fault (default 5)
  --faults <a,b,…>    only these (${FAULTS.map((f) => f.name).join(', ')})
  --seed <n>          random choices and the workload (default 1)
  --rate <n>          intents per second of the steady load (default 30)
  --no-rebalance      no controller joining and leaving during every other run
  --no-cluster        skip the scaled-out system (3 NATS nodes, 3 brokers per Kafka
                      cluster, a Redis Cluster of 3 masters and 3 replicas)
  --no-sync-always    skip the scaled-out system again with every NATS write synced
                      to disk before its ack (sync_interval always), where the NATS
                      faults (${SYNC_ALWAYS_FAULTS.join(', ')}) run once more;
                      skipped too when NATS_SYNC_INTERVAL is set (every system has it)
  --no-report         print only; leave docs/ alone
  --log-level <l>     the harness's log level (default warn)
  --service-log-level <l>  the services' log level, in their logs under the run's
                      folder (default warn; debug shows hydrations and adoptions)
`;

const args = toolArgs('fault', USAGE, {
  runs: { type: 'string', default: '5' },
  faults: { type: 'string' },
  seed: { type: 'string', default: '1' },
  rate: { type: 'string', default: '30' },
  'no-rebalance': { type: 'boolean', default: false },
  'no-cluster': { type: 'boolean', default: false },
  'no-sync-always': { type: 'boolean', default: false },
  'no-report': { type: 'boolean', default: false },
  'log-level': { type: 'string', default: 'warn' },
  'service-log-level': { type: 'string', default: 'warn' },
});
const runs = wholeArg('fault', USAGE, 'runs', args.runs, 100);
const seed = wholeArg('fault', USAGE, 'seed', args.seed, 1_000_000);
const rate = wholeArg('fault', USAGE, 'rate', args.rate, 1000);
const names = args.faults?.split(',').map((s) => s.trim());
const log = createLogger({ name: 'fault', level: args['log-level'] as 'warn' });

let system: FaultSystem | undefined;
onShutdown(async () => {
  await system?.stop();
});

const rows: FaultRun[] = [];
/** Runs that threw before their verdict (the system not ready again, a check that failed to run). */
const crashed: string[] = [];
const started = Date.now();
/** The systems in turn: one nats-server, the scaled-out one, and that again syncing every write. */
const systems: { natsNodes: number; syncAlways?: true }[] = [{ natsNodes: 1 }];
if (!args['no-cluster']) {
  systems.push({ natsNodes: 3 });
  if (!args['no-sync-always'] && !process.env.NATS_SYNC_INTERVAL)
    systems.push({ natsNodes: 3, syncAlways: true });
}
for (const { natsNodes, syncAlways } of systems) {
  let faults;
  try {
    faults = faultsFor(natsNodes, names);
  } catch (err) {
    process.stderr.write(`fault: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (syncAlways) faults = faults.filter((f) => SYNC_ALWAYS_FAULTS.includes(f.name));
  if (faults.length === 0) continue;
  const where =
    natsNodes > 1
      ? `${natsNodes}-node NATS cluster, 3-broker Kafka clusters, a Redis Cluster${syncAlways ? ', every NATS write synced (sync_interval always)' : ''}`
      : 'one nats-server, single-broker Kafka clusters';
  const suffix = natsNodes > 1 ? (syncAlways ? ' (cluster, sync always)' : ' (cluster)') : '';
  console.log(`\n── ${where}: ${faults.map((f) => f.name).join(', ')} × ${runs} ──`);
  system = await startFaultSystem({
    dir: runDir('alcor-fault-'),
    log,
    natsNodes,
    logLevel: args['service-log-level'],
    ...(syncAlways ? { syncInterval: 'always' } : {}),
    smallDisk: faults.some((f) => f.name === 'fill-nats-disk'),
  });
  const load = new SteadyLoad(system.client, {
    lanes: 12,
    perSecond: rate,
    vpcLength: 150,
    hosts: system.hosts,
    seed,
    log,
  });
  const statuses = new StatusLog(system.nc);
  const rnd = prng(seed * 31 + natsNodes);
  try {
    runs: for (let run = 1; run <= runs; run++) {
      for (const fault of faults) {
        const rebalance = !args['no-rebalance'] && run % 2 === 0 && fault.name !== 'rebalance';
        const name = `${fault.name}${suffix}`;
        let row: FaultRun;
        try {
          row = await runFault(system, load, statuses, fault, { run, rnd, log, rebalance });
        } catch (err) {
          // A failed run, not a crash of the campaign; this system is not fit for more.
          const why = `${name}#${run}: the run did not finish: ${(err as Error).message.split('\n')[0]}`;
          crashed.push(why);
          console.log(`✘ ${why}; the remaining runs on this system are not run`);
          break runs;
        }
        rows.push({ ...row, fault: name });
        console.log(describeRun(row));
      }
    }
  } finally {
    await load.stop();
    await system.stop();
    system = undefined;
  }
}

const byFault = new Map<string, FaultRun[]>();
for (const r of rows) byFault.set(r.fault, [...(byFault.get(r.fault) ?? []), r]);
const sum = (rs: FaultRun[], k: keyof FaultRun): number =>
  rs.reduce((n, r) => n + (r[k] as number), 0);
const secs = (ms: number): string => (Number.isFinite(ms) ? `${fmt(ms / 1000, 1)} s` : '—');
const table = [
  '| fault | runs | with rebalance | intents acked | in flight | lost | applied twice | order broken (log / at agents) | late / after a lost one, at agents (resynced) | not finished | incomplete | hosts divergent after | recovery p50 / p99 (after heal) | done after onset p50 / p99 |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...[...byFault].map(([fault, rs]) => {
    const rec = rs.map((r) => r.recoveryMs);
    const done = rs.map((r) => r.doneAfterOnsetMs);
    return `| ${fault} | ${rs.length} | ${rs.filter((r) => r.rebalanced).length} | ${fmt(sum(rs, 'acked'))} | ${fmt(sum(rs, 'inFlight'))} | ${sum(rs, 'lost')} | ${sum(rs, 'appliedTwice')} | ${sum(rs, 'orderBroken')} / ${sum(rs, 'disorderAtAgents')} | ${sum(rs, 'lateAtAgents')} / ${sum(rs, 'missedAtAgents')} | ${sum(rs, 'unfinished')} | ${sum(rs, 'incomplete')} | ${sum(rs, 'divergentHosts')} | ${secs(pct(rec, 50))} / ${secs(pct(rec, 99))} | ${secs(pct(done, 50))} / ${secs(pct(done, 99))} |`;
  }),
].join('\n');
const failed = rows.filter((r) => !r.ok);
const minutes = (Date.now() - started) / 60_000;
const markdown = [
  `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}: ${rows.length + crashed.length} runs in ${fmt(minutes, 0)} min (\`npm run fault -- --runs ${runs} --seed ${seed} --rate ${rate}\`), ${failed.length + crashed.length} failed${crashed.length > 0 ? ` (${crashed.length} did not finish)` : ''}.`,
  '',
  table,
].join('\n');
console.log(`\n${markdown}\n`);
for (const r of failed) console.log(`FAILED ${describeRun(r)}`);
for (const why of crashed) console.log(`FAILED ${why}`);
if (!args['no-report']) {
  await writeReport('reliability', { machine: machine(), runs, seed, rate, rows }, markdown, {
    doc: 'reliability.md',
  });
  console.log('written: docs/bench/reliability.json, docs/reliability.md');
}
process.exit(failed.length + crashed.length > 0 ? 1 : 0);
