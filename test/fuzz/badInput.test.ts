/**
 * Bad input, short version (`npm run fuzz` runs it longer and writes the report):
 * the corpus, then a seeded fuzz of every public surface beside a steady load, on a
 * system of real servers and service processes (test/fuzz/campaign.ts).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runDir } from '../../infra/index.js';
import { prng } from '../../shared/index.js';
import { testLog, within } from '../support/index.js';
import { settle } from '../fault/campaign.js';
import { SteadyLoad } from '../fault/load.js';
import { startFaultSystem, type FaultSystem } from '../fault/system.js';
import { StatusLog } from '../fault/verdict.js';
import { FuzzCampaign, describeFuzz, fuzzJudged, FUZZ_CLEAN } from './campaign.js';

const SEED = Number(process.env.FUZZ_SEED ?? 1);
const SECONDS = Number(process.env.FUZZ_SECONDS ?? 45);

interface Ctx {
  system: FaultSystem;
  campaign: FuzzCampaign;
  load: SteadyLoad;
  statuses: StatusLog;
}
const Fuzz = suite<Partial<Ctx>>('bad input at every public surface');

Fuzz.before(async (ctx) => {
  ctx.system = await within(
    240_000,
    'fuzz system start',
    startFaultSystem({
      dir: runDir('alcor-fuzz-'),
      log: testLog,
      controllers: 2,
      southbounds: 1,
      fleets: 1,
      clusters: 4,
      hostsPerCluster: 6,
    }),
  );
  ctx.campaign = new FuzzCampaign(ctx.system, prng(SEED), testLog);
  await ctx.campaign.setUp();
  ctx.load = new SteadyLoad(ctx.system.client, {
    lanes: 4,
    perSecond: 10,
    vpcLength: 150,
    hosts: ctx.system.hosts,
    seed: SEED,
    log: testLog,
  });
  ctx.statuses = new StatusLog(ctx.system.nc);
});

Fuzz.after(async (ctx) => {
  await ctx.load?.stop();
  await ctx.system?.stop();
});

Fuzz('the corpus: every case is answered with the code it must get', async (ctx) => {
  const corpus = await within(300_000, 'the corpus', ctx.campaign!.corpus());
  assert.equal(corpus.otherwise, []);
  assert.ok(corpus.cases >= 30, `${corpus.cases} cases`);
});

Fuzz(
  `${SECONDS} s of seeded fuzz beside a steady load: every case answered by the contract, no process down, nothing else lost, every host converged`,
  async (ctx) => {
    const { system, campaign, load, statuses } = ctx as Ctx;
    const countersBefore = await campaign.counters();
    await statuses.skipToEnd();
    const loadFrom = load.acked.size;
    load.start();
    const cases = await within((SECONDS + 120) * 1000, 'the fuzz', campaign.fuzz(SECONDS));
    await load.stop();
    await settle(
      statuses,
      [...load.acked.values()].slice(loadFrom),
      system.programmedDeadlineMs + 30_000,
      testLog,
    );
    await system.ready();
    const report = await campaign.verdict({
      load,
      statuses,
      loadFrom,
      seconds: SECONDS,
      cases,
      corpus: { cases: 0, asExpected: 0, otherwise: [] },
      countersBefore,
    });
    for (const line of describeFuzz(report)) console.log(`  ${line}`);
    assert.equal(fuzzJudged(report), FUZZ_CLEAN);
    // The judgement can fail: one bad ack the controllers did not count is caught.
    assert.not.equal(fuzzJudged({ ...report, acksToRefuse: report.acksToRefuse + 1 }), FUZZ_CLEAN);
    // And an agent or relay that let one undecodable goal state by uncounted.
    const { agents, relays } = report.goalStatesToRefuse;
    assert.ok(agents + relays > 0, 'undecodable goal states sent to single receivers');
    const uncounted = (name: string, n: number) => ({
      ...report,
      counters: { ...report.counters, [name]: n - 1 },
    });
    if (agents > 0)
      assert.not.equal(
        fuzzJudged(uncounted('alcor_nca_goal_states_invalid_total', agents)),
        FUZZ_CLEAN,
      );
    if (relays > 0)
      assert.not.equal(fuzzJudged(uncounted('alcor_relay_invalid_total', relays)), FUZZ_CLEAN);
    assert.ok(report.cases > 100, `${report.cases} cases`);
  },
);

Fuzz.run();
