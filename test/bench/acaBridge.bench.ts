/**
 * ACA bridges against our own agents, in the same run (issue 26):
 *   npm run bench:aca [-- --hosts 300 --aca-hosts 150 --vpcs 60 --ports 20 --rate 40]
 *
 * The demo's run (services/demo/run.ts) as its services run it: servers, 2
 * controllers, 2 southbound modules, one NCA fleet process for the agent hosts,
 * one aca-bridge process for the bridged hosts, each pushing over gRPC to a test
 * ACA (all in a process of their own). The bridged hosts are picked round robin
 * over the bindings among the hosts given ports, so both kinds get the same kind
 * of work. Per binding: intent request → the host's ack (a bridged host's is sent
 * on its ACA's reply), p50 and p99, bridged over agent; the CPU per goal-state
 * message of the bridge process against the agents' process. Twice, on fresh
 * servers: test ACAs that close each stream after its reply (as Alcor's ACA
 * does), then ones that keep streams open. The load generator's event loop and
 * send lag are shown.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { setTimeout as sleep } from 'node:timers/promises';
import { AcaLink, createLogger, repoRoot } from '../../infra/index.js';
import { forkTestAcas } from '../../services/aca-bridge/index.js';
import { start } from '../../services/demo/index.js';
import { entryOf, runDemo, type BindingSummary } from '../../services/demo/run.js';
import { ScenarioSchema } from '../../services/demo/scenario.js';
import { fmt, machine, pct, toolArgs, wholeArg, writeReport } from './report.js';

const USAGE = 'npm run bench:aca [-- --hosts 300 --aca-hosts 150 --vpcs 60 --ports 20 --rate 40]\n';
const values = toolArgs('bench:aca', USAGE, {
  hosts: { type: 'string', default: '300' },
  'aca-hosts': { type: 'string', default: '150' },
  vpcs: { type: 'string', default: '60' },
  ports: { type: 'string', default: '20' },
  rate: { type: 'string', default: '40' },
});
const HOSTS = wholeArg('bench:aca', USAGE, 'hosts', values.hosts, 100_000);
const ACA_HOSTS = wholeArg('bench:aca', USAGE, 'aca-hosts', values['aca-hosts'], HOSTS - 1);
const VPCS = wholeArg('bench:aca', USAGE, 'vpcs', values.vpcs, 100_000);
const PORTS = wholeArg('bench:aca', USAGE, 'ports', values.ports, 10_000);
const RATE = wholeArg('bench:aca', USAGE, 'rate', values.rate, 100_000);

const log = createLogger({ name: 'bench-aca', level: 'warn' });
const scenario = ScenarioSchema.parse(
  parseYaml(readFileSync(join(repoRoot, 'demo', 'scenario.yaml'), 'utf8')),
);
scenario.topology = { ...scenario.topology, hosts: HOSTS, clusters: Math.min(30, HOSTS) };
scenario.workload = { ...scenario.workload, vpcs: VPCS, ports: PORTS };

/** One run on fresh servers: the demo's summary. */
async function runOnce(longLived: boolean) {
  // The run takes its servers' endpoints into the environment: the next one must
  // provision its own again.
  const env = { ...process.env };
  const demo = await start({ log, kafkaClusters: ['a', 'b'] });
  try {
    const run = await runDemo({
      scenario,
      servers: demo.servers,
      dir: demo.servers.dir,
      controllers: 2,
      southbounds: 2,
      rate: RATE,
      ncaShards: 1,
      acaHosts: ACA_HOSTS,
      acaLongLived: longLived,
      settleMs: 60_000,
      log,
      logLevel: 'warn',
      out: (line) => process.stdout.write(`${line}\n`),
      progress: undefined,
    });
    await run.stop();
    return run.summary;
  } finally {
    await demo.stop();
    for (const name of Object.keys(process.env)) if (!(name in env)) delete process.env[name];
    Object.assign(process.env, env);
  }
}

type Summary = Awaited<ReturnType<typeof runOnce>>;

/** Bridged against agent hosts of one run, by binding, and CPU per goal state. */
function compare(summary: Summary) {
  const byBinding = new Map(summary.bindings.map((b) => [b.binding, b]));
  const rows = [...byBinding.values()]
    .filter((b) => !b.binding.startsWith('aca/') && byBinding.has(`aca/${b.binding}`))
    .map((agent: BindingSummary) => {
      const bridged = byBinding.get(`aca/${agent.binding}`)!;
      return {
        binding: agent.binding,
        agentHosts: agent.hosts,
        bridgedHosts: bridged.hosts,
        agentAcks: agent.acks,
        bridgedAcks: bridged.acks,
        agentP50Ms: agent.p50Ms,
        bridgedP50Ms: bridged.p50Ms,
        agentP99Ms: agent.p99Ms,
        bridgedP99Ms: bridged.p99Ms,
        p50Ratio: bridged.p50Ms / agent.p50Ms,
        p99Ratio: bridged.p99Ms / agent.p99Ms,
      };
    });
  const cpu = new Map(summary.cpu.map((c) => [c.role, c.seconds]));
  const messages = (bridged: boolean) =>
    summary.bindings
      .filter((b) => b.binding.startsWith('aca/') === bridged)
      .reduce((n, b) => n + b.delivered, 0);
  const bridge = (1000 * (cpu.get('aca-bridge') ?? NaN)) / messages(true);
  const agent = (1000 * (cpu.get('nca') ?? NaN)) / messages(false);
  return {
    intents: summary.intents,
    accepted: summary.accepted,
    programmed: summary.programmed,
    acasClean: summary.aca ? summary.aca.converged === summary.aca.hosts : false,
    aca: summary.aca,
    bindings: rows,
    cpuMsPerGoalState: { bridge, agent, ratio: bridge / agent },
    testAcasCpuMsPerIntent: summary.cpu.find((c) => c.role === 'test ACAs')?.msPerIntent,
    machineCpuMsPerIntent: summary.cpu.reduce((n, c) => n + c.msPerIntent, 0),
    goalStates: { bridged: messages(true), agents: messages(false) },
    client: summary.client,
  };
}

/**
 * The push alone, with nothing else running: links from this process to 50 test
 * ACAs in another, each pushing a one-neighbor GoalStateV2 every 100–300 ms for
 * 10 s. Its round trip, and this process's CPU per push (the bridge's gRPC side).
 */
async function isolated(longLived: boolean) {
  const acas = await forkTestAcas(50, entryOf('services/aca-bridge/testAcaProcess.ts'), {
    longLived,
  });
  const links = acas.addresses.map(
    (address) => new AcaLink({ address, hostId: 'bench', logger: log }),
  );
  await Promise.all(links.map((l) => l.waitReady(5000)));
  const message = {
    format_version: 1,
    neighbor_states: {
      'v:p': {
        operation_type: 'CREATE' as const,
        configuration: {
          id: 'v:p',
          revision_number: 1,
          fixed_ips: [{ neighbor_type: 'L2' as const, subnet_id: 'v:s', ip_address: '10.0.1.5' }],
        },
      },
    },
  };
  for (const l of links) await l.push(message); // the first call of each connection
  const rt: number[] = [];
  const cpu = process.cpuUsage();
  const until = performance.now() + 10_000;
  await Promise.all(
    links.map(async (l) => {
      while (performance.now() < until) {
        rt.push((await l.push(message)).ms);
        await sleep(100 + Math.random() * 200);
      }
    }),
  );
  const used = process.cpuUsage(cpu);
  for (const l of links) l.close();
  await acas.stop();
  return {
    pushes: rt.length,
    p50Ms: pct(rt, 50),
    p99Ms: pct(rt, 99),
    cpuMsPerPush: (used.user + used.system) / 1000 / rt.length,
  };
}

const runs = {
  perPush: compare(await runOnce(false)),
  longLived: compare(await runOnce(true)),
  isolated: { perPush: await isolated(false), longLived: await isolated(true) },
};
const data = {
  machine: machine(),
  hosts: HOSTS,
  acaHosts: ACA_HOSTS,
  vpcs: VPCS,
  portsPerVpc: PORTS,
  offeredPerSecond: RATE,
  ...runs,
};
const ms = (n: number) => `${fmt(n)} ms`;
const table = (r: ReturnType<typeof compare>) => `
| binding | hosts (agent / bridged) | p50 agent | p50 bridged | ratio | p99 agent | p99 bridged | ratio |
| ------- | ----------------------- | --------- | ----------- | ----- | --------- | ----------- | ----- |
${r.bindings
  .map(
    (b) =>
      `| ${b.binding} | ${b.agentHosts} / ${b.bridgedHosts} | ${ms(b.agentP50Ms)} | ${ms(b.bridgedP50Ms)} | ${fmt(b.p50Ratio, 2)}× | ${ms(b.agentP99Ms)} | ${ms(b.bridgedP99Ms)} | ${fmt(b.p99Ratio, 2)}× |`,
  )
  .join('\n')}
`;
const about = (r: ReturnType<typeof compare>) =>
  `${r.programmed}/${r.accepted} accepted intents programmed, the ACAs ${r.acasClean ? 'clean against the log' : '**NOT clean against the log**'} (${r.aca?.messages ?? 0} GoalStateV2, ${r.aca?.fullMessages ?? 0} with FULL); at the bridges: queued p50 ${ms(r.aca?.queueP50Ms ?? NaN)}, push round trip p50 ${ms(r.aca?.roundtripP50Ms ?? NaN)} / p99 ${ms(r.aca?.roundtripP99Ms ?? NaN)}. CPU per goal-state message taken in: the bridge ${fmt(r.cpuMsPerGoalState.bridge, 3)} ms, our agent ${fmt(r.cpuMsPerGoalState.agent, 3)} ms (${fmt(r.cpuMsPerGoalState.ratio, 2)}×); the test ACAs ${fmt(r.testAcasCpuMsPerIntent ?? NaN, 2)} ms per intent; all processes ${fmt(r.machineCpuMsPerIntent, 1)} ms per intent (${fmt((r.machineCpuMsPerIntent * RATE) / (10 * cpus().length), 0)} % of the machine's ${cpus().length} cores at ${RATE}/s). The load generator: send lag p99 ${ms(r.client.sendLagP99Ms)}, event loop ${fmt(100 * r.client.eventLoopUtilization)} % busy${r.client.eventLoopUtilization > 0.8 || r.client.sendLagP99Ms > 50 ? ' — **saturated**' : ''}.`;
const markdown = `
### ACA bridge against our own agent (\`npm run bench:aca\`)

${data.machine}. Each run: fresh servers, ${HOSTS} hosts, ${ACA_HOSTS} of them behind ACA
bridges (one aca-bridge process; the test ACAs in a process of their own) and the others
our own agents (one nca process); ${VPCS} VPCs of ${PORTS} ports, ${runs.perPush.intents}
intents offered at ${RATE}/s. Intent request → the host's ack (a bridged host's goes out on
its ACA's reply), by binding.

**As Alcor's ACA behaves (a stream per push).** ${about(runs.perPush)}
${table(runs.perPush)}
**Long-lived streams** (an ACA that keeps the stream open). ${about(runs.longLived)}
${table(runs.longLived)}
**The push alone** (nothing else running: 50 links to 50 test ACAs in another process,
a one-neighbor GoalStateV2 every 100–300 ms each): a stream per push, round trip p50
${fmt(runs.isolated.perPush.p50Ms, 2)} ms / p99 ${fmt(runs.isolated.perPush.p99Ms, 2)} ms,
${fmt(runs.isolated.perPush.cpuMsPerPush, 3)} ms of the bridge side's CPU per push;
long-lived, p50 ${fmt(runs.isolated.longLived.p50Ms, 2)} ms / p99
${fmt(runs.isolated.longLived.p99Ms, 2)} ms, ${fmt(runs.isolated.longLived.cpuMsPerPush, 3)} ms
per push (${runs.isolated.perPush.pushes} and ${runs.isolated.longLived.pushes} pushes).
`;
await writeReport('aca-bridge', data, markdown, { doc: 'aca-bridge.md' });
process.stdout.write(markdown);
process.exit(0);
