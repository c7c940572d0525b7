/**
 * Bad input, long version: `npm run fuzz -- [--seconds N] [--seed N]`. The corpus,
 * then N seconds of seeded fuzz of every public surface beside a steady load;
 * writes docs/bench/badinput.json and its section of docs/reliability.md; exits 1
 * if any case broke the contract or the system came out of it hurt.
 */
import { createLogger, onShutdown, runDir } from '../../infra/index.js';
import { prng } from '../../shared/index.js';
import { fmt, machine, toolArgs, wholeArg, writeReport } from '../bench/report.js';
import { settle } from '../fault/campaign.js';
import { SteadyLoad } from '../fault/load.js';
import { startFaultSystem, type FaultSystem } from '../fault/system.js';
import { StatusLog } from '../fault/verdict.js';
import { FuzzCampaign, SURFACES, describeFuzz } from './campaign.js';

const USAGE = `Usage: npm run fuzz -- [options]

  --seconds <n>     how long to fuzz (default 300)
  --seed <n>        the cases' seed (default 1)
  --no-report       print only; leave docs/ alone
  --log-level <l>   the harness's log level (default warn)
`;
const args = toolArgs('fuzz', USAGE, {
  seconds: { type: 'string', default: '300' },
  seed: { type: 'string', default: '1' },
  'no-report': { type: 'boolean', default: false },
  'log-level': { type: 'string', default: 'warn' },
});
const seconds = wholeArg('fuzz', USAGE, 'seconds', args.seconds, 86_400);
const seed = wholeArg('fuzz', USAGE, 'seed', args.seed, 1_000_000);
const log = createLogger({ name: 'fuzz', level: args['log-level'] as 'warn' });

let system: FaultSystem | undefined;
onShutdown(async () => {
  await system?.stop();
});
system = await startFaultSystem({
  dir: runDir('alcor-fuzz-'),
  log,
  controllers: 2,
  southbounds: 1,
  fleets: 1,
  clusters: 4,
  hostsPerCluster: 6,
});
const campaign = new FuzzCampaign(system, prng(seed), log);
await campaign.setUp();
const load = new SteadyLoad(system.client, {
  lanes: 4,
  perSecond: 10,
  vpcLength: 150,
  hosts: system.hosts,
  seed,
  log,
});
const statuses = new StatusLog(system.nc);
const corpus = await campaign.corpus();
const countersBefore = await campaign.counters();
await statuses.skipToEnd();
load.start();
const cases = await campaign.fuzz(seconds);
await load.stop();
await settle(statuses, [...load.acked.values()], system.programmedDeadlineMs + 30_000, log);
await system.ready();
const report = await campaign.verdict({
  load,
  statuses,
  loadFrom: 0,
  seconds,
  cases,
  corpus,
  countersBefore,
});
await system.stop();
system = undefined;

for (const line of describeFuzz(report)) console.log(line);
for (const line of corpus.otherwise) console.log(`CORPUS: ${line}`);

const top = (codes: Record<string, number>): string =>
  Object.entries(codes)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([k, n]) => `\`${k}\` ${fmt(n)}`)
    .join(', ');
const markdown = [
  `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()} (\`npm run fuzz -- --seconds ${seconds} --seed ${seed}\`): the corpus (${corpus.asExpected}/${corpus.cases} answered with the code expected), then ${fmt(report.cases)} fuzzed cases in ${seconds} s beside a steady load of ${fmt(report.load.acked)} intents. ${report.ok ? 'Every check held.' : '**Some checks failed** (below).'}`,
  '',
  '| surface | cases | answers (most frequent) | contract broken |',
  '| --- | --- | --- | --- |',
  ...SURFACES.map(
    (s) =>
      `| ${s} | ${fmt(report.bySurface[s].tried)} | ${top(report.bySurface[s].codes)} | ${report.bySurface[s].violations.length} |`,
  ),
  '',
  `After it: processes down ${report.crashed.length}; EVENTS against the pure replay of INTENTS: ${report.replay ? 'DIFFERENT' : 'the same'}; intents on a bad subject token without a status: ${report.refusedWithoutStatus}; the steady load: lost ${report.load.lost}, applied twice ${report.load.appliedTwice}, order broken ${report.load.orderBroken}, unfinished ${report.load.unfinished}; oracle: ${report.divergentHosts} divergent and ${report.silentHosts} silent hosts. Counted by the services: ${Object.entries(
    report.counters,
  )
    .map(([k, v]) => `\`${k}\` ${fmt(v)}`)
    .join(', ')}.`,
].join('\n');
if (!args['no-report']) {
  await writeReport('badinput', { machine: machine(), seed, ...report }, markdown, {
    doc: 'reliability.md',
  });
  console.log('written: docs/bench/badinput.json, docs/reliability.md');
}
process.exit(report.ok ? 0 : 1);
