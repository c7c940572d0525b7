/**
 * `./scripts/demo.sh [options]` — the main job: servers, services, a workload,
 * live progress and a summary (services/demo/run.ts). `--help` lists the flags.
 * With --keep-running it then writes every endpoint and credential to
 * `<run dir>/alcor.env` (mode 0600), prints them with secrets masked and `READY`,
 * and keeps everything up until Ctrl-C.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import {
  LOG_LEVELS,
  createLogger,
  onShutdown,
  redactEnvValue,
  repoRoot,
  writeEnvFile,
} from '../../infra/index.js';
import { removeContext, saveContext } from '../cli/context.js';
import { start, type Demo } from './index.js';
import { DEFAULT_COLUMNS } from './progress.js';
import { renderSummary, runDemo, writeScenarioFiles, type DemoRun } from './run.js';
import { ScenarioSchema, type Scenario } from './scenario.js';

/** Intents per second the demo offers by default: about half of what this machine's kind takes (docs/performance.md). */
const DEFAULT_RATE = 100;

const USAGE = `Usage: ./scripts/demo.sh [options]

Starts nats-server (JetStream), Redis and two Kafka clusters, then 2 controllers,
2 southbound modules and a fleet of simulated NCAs; loads the scenario's topology
and applies its intents with live progress; ends with a summary.

  --scenario <file>      scenario (default demo/scenario.yaml)
  --once                 CI size: 60 hosts in 6 clusters, 12 VPCs of 6 ports
  --hosts <n>            hosts (default from the scenario: 1000)
  --clusters <n>         topology clusters over the regions (default 10)
  --vpcs <n>             VPCs (default 200)
  --ports <n>            ports per VPC (default 20)
  --seed <n>             workload seed
  --controllers <n>      controller processes (default 2)
  --southbounds <n>      southbound processes (default 2)
  --rate <n|max>         intents offered per second, open loop: arrivals at random
                         across the VPCs, each VPC's in order, published to their
                         intent subjects (default ${DEFAULT_RATE}, about half this
                         machine's capacity); max: all at once (capacity)
  --nca-shards <n>       NCA fleet processes, each simulating every nth host (default 1)
  --aca-hosts <n>        n hosts (spread over the bindings) behind ACA bridges pushing
                         Alcor GoalStateV2 over gRPC to test ACAs, checked against
                         the log in Alcor's schema (default 3, fewer than the
                         hosts; 0: none)
  --write-files <dir>    only expand the scenario into <dir>/topology.json and
                         <dir>/intents.json (for alcor topology load, alcor apply)
                         and exit: no servers, no services
  --keep-running         leave everything up: endpoints to <run dir>/alcor.env (0600),
                         shown with secrets masked, then READY
  --log-level <level>    trace|debug|info|warn|error|silent, demo and services (default warn)
  -h, --help             this text
`;

const count = (name: string, v: string | undefined, max = 1_000_000): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max)
    usage(`--${name} ${v}: a whole number from 1 to ${max}`);
  return Number(v);
};
function usage(message: string): never {
  process.stderr.write(`demo: ${message}\n\n${USAGE}`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      scenario: { type: 'string', default: join(repoRoot, 'demo', 'scenario.yaml') },
      once: { type: 'boolean', default: false },
      hosts: { type: 'string' },
      clusters: { type: 'string' },
      vpcs: { type: 'string' },
      ports: { type: 'string' },
      seed: { type: 'string' },
      controllers: { type: 'string' },
      southbounds: { type: 'string' },
      rate: { type: 'string' },
      'nca-shards': { type: 'string' },
      'aca-hosts': { type: 'string' },
      'keep-running': { type: 'boolean', default: false },
      'write-files': { type: 'string' },
      'log-level': { type: 'string', default: 'warn' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (err) {
  usage((err as Error).message);
}
const args = parsed.values;
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const LEVELS: readonly string[] = LOG_LEVELS;
if (!LEVELS.includes(args['log-level']))
  usage(`--log-level ${args['log-level']}: one of ${LEVELS.join(', ')}`);

let scenario: Scenario;
try {
  const raw: unknown = parseYaml(readFileSync(args.scenario, 'utf8'));
  const checked = ScenarioSchema.safeParse(raw);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    usage(`${args.scenario}: ${issue.path.join('.') || 'scenario'}: ${issue.message}`);
  }
  scenario = checked.data;
} catch (err) {
  usage(`${args.scenario}: ${(err as Error).message}`);
}
if (args.once) {
  scenario.topology = { ...scenario.topology, hosts: 60, clusters: 6 };
  scenario.workload = { ...scenario.workload, vpcs: 12, ports: 6, clustersPerVpc: 2 };
}
scenario.topology.hosts = count('hosts', args.hosts, 100_000) ?? scenario.topology.hosts;
scenario.topology.clusters = count('clusters', args.clusters, 700) ?? scenario.topology.clusters;
scenario.workload.vpcs = count('vpcs', args.vpcs, 100_000) ?? scenario.workload.vpcs;
scenario.workload.ports = count('ports', args.ports, 10_000) ?? scenario.workload.ports;
scenario.seed = count('seed', args.seed) ?? scenario.seed;
if (scenario.topology.hosts < scenario.topology.clusters)
  usage(
    `--hosts ${scenario.topology.hosts} is fewer than the ${scenario.topology.clusters} clusters`,
  );
const controllers = count('controllers', args.controllers, 16) ?? 2;
const southbounds = count('southbounds', args.southbounds, 16) ?? 2;
const rate: number | 'max' =
  args.rate === 'max' ? 'max' : (count('rate', args.rate, 100_000) ?? DEFAULT_RATE);
const ncaShards = count('nca-shards', args['nca-shards'], 16) ?? 1;
/** By default 3 hosts, one per binding, but never every host: one at least stays an agent. */
const acaHosts =
  args['aca-hosts'] === '0'
    ? 0
    : (count('aca-hosts', args['aca-hosts'], 1000) ?? Math.min(3, scenario.topology.hosts - 1));
if (acaHosts >= scenario.topology.hosts)
  usage(`--aca-hosts ${acaHosts}: fewer than the ${scenario.topology.hosts} hosts`);
const kafkaClusters = [
  ...new Set(
    scenario.topology.bindings.filter((b) => b.startsWith('kafka:')).map((b) => b.slice(6)),
  ),
];

if (args['write-files'] !== undefined) {
  const dir = args['write-files'];
  try {
    mkdirSync(dir, { recursive: true });
    for (const line of writeScenarioFiles(scenario, dir).lines) process.stdout.write(`${line}\n`);
  } catch (err) {
    usage(`--write-files ${dir}: ${(err as Error).message}`);
  }
  process.exit(0);
}

const log = createLogger({ name: 'demo', level: args['log-level'] as 'warn' });
const out = (line: string): boolean => process.stdout.write(`${line}\n`);
const tty = process.stderr.isTTY === true;
let demo: Demo | undefined;
/** The CLI contexts this run wrote (removed when it stops). */
const demoContexts: string[] = [];
/** Stops the services (set once they start, before the run returns). */
let stopServices: (() => Promise<void>) | undefined;
let interrupted = false;

let stopped: Promise<string[]> | undefined;
/**
 * Stops the services, then the servers (once, whoever asks first); the run folder
 * stays with every log in it, the servers' data goes. Returns the lines that say
 * where it is.
 */
function stopAll(): Promise<string[]> {
  return (stopped ??= stopEverything());
}
async function stopEverything(): Promise<string[]> {
  await stopServices?.();
  if (!demo) return [];
  const dir = demo.servers.dir;
  // The endpoints and credentials it lists are of servers no longer running.
  rmSync(join(dir, 'alcor.env'), { force: true });
  removeDemoContexts();
  await demo.stop({ keepLogs: true });
  const logs = logFiles(dir);
  return [`run folder: ${dir}`, `  logs: ${logs.length > 0 ? logs.join(', ') : 'none'}`];
}

/** The `*.log` files under `dir`, relative to it, services' first. */
function logFiles(dir: string): string[] {
  let files: string[];
  try {
    files = readdirSync(dir, { recursive: true, encoding: 'utf8' });
  } catch {
    return [];
  }
  return files
    .filter((f) => f.endsWith('.log'))
    .sort((a, b) => Number(a.includes(sep)) - Number(b.includes(sep)) || a.localeCompare(b));
}

// Ctrl-C (SIGINT) or SIGTERM: stop everything cleanly, keep the run folder and its
// logs, say where they are on stderr; exit 130 / 143 (onShutdown).
onShutdown(async (signal) => {
  interrupted = true;
  // On a terminal the progress line is cleared first.
  process.stderr.write(
    `${tty ? '\r\x1b[K' : ''}demo: ${signal}: stopping the services, then the servers…\n`,
  );
  for (const line of await stopAll()) process.stderr.write(`demo: ${line}\n`);
});
/** After an interrupt the shutdown handler ends the process: wait for it (a timer keeps the loop up). */
const untilExit = (): Promise<never> =>
  new Promise<never>(() => setInterval(() => undefined, 60_000));

try {
  demo = await start({ log, kafkaClusters: kafkaClusters.length > 0 ? kafkaClusters : ['a'] });
} catch (err) {
  if (interrupted) await untilExit();
  process.stderr.write(`demo: could not start the servers: ${(err as Error).message}\n`);
  process.exit(1);
}

out('\nAlcor Southbound — servers');
const width = Math.max(...demo.health.map((r) => r.server.length));
for (const row of demo.health) {
  out(
    `  ${row.healthy ? '✔' : '✘'} ${row.server.padEnd(width)}  ${row.version.padEnd(8)} ${row.endpoint}  (${row.source})  ${row.detail}`,
  );
}
if (!demo.health.every((r) => r.healthy)) {
  out('some servers are NOT healthy');
  for (const line of await stopAll()) out(line);
  process.exit(1);
}

let run: DemoRun;
try {
  run = await runDemo({
    scenario,
    servers: demo.servers,
    dir: demo.servers.dir,
    controllers,
    southbounds,
    rate,
    ncaShards,
    acaHosts,
    settleMs: 60_000,
    log,
    logLevel: args['log-level'] === 'silent' ? 'silent' : args['log-level'],
    out,
    // Redrawn in place on a terminal, fitted to its width (\x1b[K clears what a
    // longer line before left); not a terminal: plain lines now and then.
    progress: tty
      ? {
          redraw: (line) => {
            if (!interrupted) process.stderr.write(`\r${line}\x1b[K`);
          },
          columns: () => process.stderr.columns ?? process.stdout.columns ?? DEFAULT_COLUMNS,
        }
      : undefined,
    started: (stop) => {
      stopServices = stop;
    },
  });
} catch (err) {
  if (interrupted) await untilExit();
  process.stderr.write(`demo: ${(err as Error).stack ?? String(err)}\n`);
  for (const line of await stopAll()) out(line);
  process.exit(1);
}
if (interrupted) await untilExit();
for (const line of renderSummary(run.summary)) out(line);

if (args['keep-running']) {
  // Every endpoint, credentials included, goes to a file only this user can read;
  // the lines shown mask the secrets (`set -a; . $ALCOR_ENV_FILE` exports them all).
  const entries: Record<string, string> = { ...demo.endpoints };
  for (const s of run.services)
    entries[`${s.name.toUpperCase().replaceAll('-', '_')}_METRICS_URL`] = `${s.opsUrl}/metrics`;
  entries.DEMO_TOPOLOGY_FILE = join(demo.servers.dir, 'topology.json');
  entries.DEMO_INTENTS_FILE = join(demo.servers.dir, 'intents.json');
  const envFile = join(demo.servers.dir, 'alcor.env');
  writeEnvFile(envFile, entries);
  for (const [name, value] of Object.entries(entries))
    out(`${name}=${redactEnvValue(name, value)}`);
  out(`ALCOR_ENV_FILE=${envFile}`);
  // Two contexts for the CLI: `demo` reads (the operator role), `demo-admin` may change.
  for (const name of writeDemoContexts(demo.endpoints)) out(`ALCOR_CONTEXT=${name}`);
  out('READY');
} else {
  for (const line of await stopAll()) out(line);
  process.exit(run.summary.ok ? 0 : 1);
}

/**
 * `alcor --context demo …` reads this run as the read-only operator;
 * `--context demo-admin` may change it (the `service` user). Without users on the
 * server (Docker), both connect without credentials.
 */
function writeDemoContexts(endpoints: Record<string, string>): string[] {
  const url = endpoints.NATS_URL;
  if (!url) return [];
  const dir = endpoints.ALCOR_NATS_CREDENTIALS;
  const ca = endpoints.NATS_CA_FILE;
  const where = demo ? ` (${demo.servers.dir})` : '';
  for (const [name, role, what] of [
    ['demo', 'operator', 'reads'],
    ['demo-admin', 'service', 'may change'],
  ] as const) {
    saveContext(name, {
      description: `the running demo${where}: ${what}`,
      url,
      ...(dir ? { nkey: join(dir, `${role}.nk`) } : {}),
      ...(ca ? { ca } : {}),
    });
    demoContexts.push(name);
  }
  return demoContexts;
}

function removeDemoContexts(): void {
  for (const name of demoContexts.splice(0)) {
    try {
      removeContext(name);
    } catch {
      // already gone (removed by hand)
    }
  }
}
