/**
 * `alcor check` over many VPCs: loading each from its snapshot (and the commits
 * after it), 16 at once, against folding each from revision 0.
 *   npm run bench:check [-- --vpcs 2000 --per-vpc 30 --hosts 100 --snapshot-every 10
 *                          --runs 3 --before <checkout of an earlier commit, built>]
 *
 * A fresh nats-server; one controller in-process (all buckets, a snapshot every
 * `--snapshot-every` commits, no passivation during the run) and the hosts'
 * agents in-process. Each VPC gets `--per-vpc` intents (create, subnet, then ports
 * created and deleted on a few hosts), published in waves (each VPC's next intent,
 * the wave decided before the next) so that each is a commit of its own. Then, each `--runs` times (the median is reported):
 *  - the fold alone, in this process: the previous check's (one VPC after another,
 *    from revision 0: services/nca/oracle.ts foldEventLog), `expectedFromLog` with
 *    `full` (16 at once, from revision 0), and `expectedFromLog` (from snapshots);
 *  - the command end to end (`alcor check`, `alcor check --full`; with `--before`,
 *    that checkout's `alcor check` too), a child process as an operator runs it.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  DEFAULT_LAYOUT,
  NATS_SERVER_VERSION,
  connectNats,
  createLogger,
  ensureLayout,
  putHosts,
  repoRoot,
  runDir,
  startLocalNats,
} from '../../infra/index.js';
import { DEFAULT_BUCKET_COUNT, kvBuckets, prng, streams, type Status } from '../../shared/index.js';
import { start } from '../../services/controller/index.js';
import { startFleet } from '../../services/nca/fleet.js';
import { expectedState, foldEventLog } from '../../services/nca/oracle.js';
import { expectedFromLog } from '../../services/cli/check.js';
import { clientConnections } from '../support/controller.js';
import { fleet, publishScripts } from '../support/workload.js';
import { fmt, machine, toolArgs, wholeArg, writeReport } from './report.js';

const values = toolArgs(
  'bench:check',
  'npm run bench:check [-- --vpcs 2000 --per-vpc 30 --hosts 100 --snapshot-every 10 --runs 3 --before <dir>]\n',
  {
    vpcs: { type: 'string', default: '2000' },
    'per-vpc': { type: 'string', default: '30' },
    hosts: { type: 'string', default: '100' },
    'snapshot-every': { type: 'string', default: '10' },
    runs: { type: 'string', default: '3' },
    before: { type: 'string' },
  },
);
const USAGE =
  'npm run bench:check [-- --vpcs 2000 --per-vpc 30 --hosts 100 --snapshot-every 10 --runs 3 --before <dir>]\n';
const VPCS = wholeArg('bench:check', USAGE, 'vpcs', values.vpcs, 100_000);
const PER_VPC = Math.max(3, wholeArg('bench:check', USAGE, 'per-vpc', values['per-vpc'], 10_000));
const HOSTS = 10 * Math.ceil(wholeArg('bench:check', USAGE, 'hosts', values.hosts, 10_000) / 10);
const SNAPSHOT_EVERY = wholeArg(
  'bench:check',
  USAGE,
  'snapshot-every',
  values['snapshot-every'],
  1_000_000,
);
const RUNS = wholeArg('bench:check', USAGE, 'runs', values.runs, 100);
const log = createLogger({ name: 'bench', level: 'silent', pretty: false });

/** A VPC's intents: create, subnet, then ports created (and some deleted) on a few hosts. */
function script(vpcId: string, hostIds: readonly string[], seed: number): unknown[] {
  const rnd = prng(seed);
  const own = Array.from({ length: 4 }, () => hostIds[Math.floor(rnd() * hostIds.length)]!);
  const out: unknown[] = [
    { id: `${vpcId}-vpc`, kind: 'vpc.create', vpcId, spec: { cidr: '10.0.0.0/16' } },
    {
      id: `${vpcId}-s1`,
      kind: 'subnet.create',
      vpcId,
      spec: { subnetId: 's1', cidr: '10.0.1.0/24', gatewayIp: '10.0.1.1' },
    },
  ];
  const live: string[] = [];
  for (let n = 0; out.length < PER_VPC; n++) {
    if (live.length > 3 && rnd() < 0.3) {
      const portId = live.splice(Math.floor(rnd() * live.length), 1)[0]!;
      out.push({ id: `${vpcId}-d${n}`, kind: 'port.delete', vpcId, spec: { portId } });
    } else {
      const portId = `p${n}`;
      live.push(portId);
      out.push({
        id: `${vpcId}-c${n}`,
        kind: 'port.create',
        vpcId,
        spec: { portId, subnetId: 's1', hostId: own[n % own.length]! },
      });
    }
  }
  return out;
}

/** Milliseconds of one run of `f`. */
async function timed(f: () => Promise<unknown>): Promise<number> {
  const began = performance.now();
  await f();
  return performance.now() - began;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** `alcor <args>` from a checkout (its bin.js), as an operator runs it: its wall time and exit code. */
function cli(
  root: string,
  url: string,
  args: string[],
): Promise<{ ms: number; code: number; out: string }> {
  const began = performance.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(root, 'services/cli/bin.js'), ...args],
      { env: { ...process.env, NATS_URL: url }, timeout: 600_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({
          ms: performance.now() - began,
          code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
          out: `${stdout}${stderr}`.trim().split('\n').slice(0, 2).join(' | '),
        }),
    );
  });
}

const dir = runDir('alcor-bench-check-');
const server = await startLocalNats({ dir, bucketCount: DEFAULT_BUCKET_COUNT });
const nc = await connectNats(server.url, { name: 'bench', reconnect: false });
const jsm = await jetstreamManager(nc);
await ensureLayout(nc, jsm, DEFAULT_LAYOUT);
const hosts = fleet(10, HOSTS / 10, 'bc');
await putHosts(nc, hosts);
const controller = await start({
  instanceId: 'bench',
  natsUrl: server.url,
  buckets: Array.from({ length: DEFAULT_BUCKET_COUNT }, (_, i) => i),
  snapshotEvery: SNAPSHOT_EVERY,
  idleMs: 3_600_000,
  programmedDeadlineMs: 600_000,
  log,
});
const agents = await startFleet({
  natsUrl: server.url,
  kafka: {},
  hosts,
  logger: log,
  fleetId: 'bench',
});

// ── the system: VPCS VPCs of PER_VPC commits each ─────────────────────────
const scripts = new Map<string, unknown[]>();
const hostIds = hosts.map((h) => h.hostId);
for (let v = 0; v < VPCS; v++) scripts.set(`bc-${v}`, script(`bc-${v}`, hostIds, v + 1));
const decided = new Set<string>();
const finished = new Set<string>();
let accepted = 0;
const sub = nc.subscribe('status.>', {
  callback: (_err, m) => {
    const s = m.json<Status>();
    if (s.outcome === 'accepted' || s.outcome === 'rejected') {
      if (!decided.has(s.intentId)) {
        decided.add(s.intentId);
        if (s.outcome === 'accepted') accepted += 1;
      }
    } else finished.add(s.intentId);
  },
});
const clients = await clientConnections(server.url, 4);
const built = performance.now();
const until = async (ok: () => boolean, what: string): Promise<void> => {
  const deadline = Date.now() + 900_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};
// In waves, each VPC's next intent in each, the wave decided before the next: a
// VPC's intents that wait together would be committed as one group.
for (let k = 0; k < PER_VPC; k++) {
  const wave = new Map([...scripts].map(([vpcId, intents]) => [vpcId, [intents[k]]]));
  await publishScripts(clients, wave, 512);
  await until(() => decided.size === (k + 1) * VPCS, `wave ${k + 1} decided`);
}
await until(() => finished.size >= accepted, 'every accepted intent programmed');
sub.unsubscribe();
const buildSeconds = (performance.now() - built) / 1000;
// Snapshots are written once each group is out: wait for their count to settle.
let snapshots = -1;
for (;;) {
  await new Promise((r) => setTimeout(r, 1000));
  const now = (await jsm.streams.info(`KV_${kvBuckets.vpcSnapshots}`)).state.messages;
  if (now === snapshots) break;
  snapshots = now;
}
const events = (await jsm.streams.info(streams.events)).state.messages;

// ── the fold alone, in this process ───────────────────────────────────────
const fold = { before: [] as number[], full: [] as number[], snapshots: [] as number[] };
let loaded = { fromSnapshot: 0, fromStart: 0, entries: 0, fullEntries: 0 };
for (let run = 0; run < RUNS; run++) {
  fold.before.push(await timed(async () => expectedState(await foldEventLog(nc))));
  fold.full.push(
    await timed(async () => {
      loaded.fullEntries = (await expectedFromLog(nc, { full: true })).fold.entries;
    }),
  );
  fold.snapshots.push(
    await timed(async () => {
      const r = await expectedFromLog(nc);
      loaded = { ...loaded, ...r.fold };
    }),
  );
}

// ── the command, end to end ───────────────────────────────────────────────
const command: Record<string, number[]> = { check: [], full: [], before: [] };
const outputs: Record<string, string> = {};
for (let run = 0; run < RUNS; run++) {
  for (const [name, root, args] of [
    ['check', repoRoot, ['check']],
    ['full', repoRoot, ['check', '--full']],
    ...(values.before ? [['before', values.before, ['check']] as const] : []),
  ] as const) {
    const r = await cli(root, server.url, [...args]);
    if (r.code !== 0)
      throw new Error(`alcor ${args.join(' ')} (${root}) ended ${r.code}: ${r.out}`);
    command[name]!.push(r.ms);
    outputs[name] = r.out;
  }
}

await Promise.all(clients.map((c) => c.close()));
await agents.stop();
await controller.stop();
await nc.close();
await server.stop();
rmSync(dir, { recursive: true, force: true });

const ms = (xs: number[]): string => (xs.length > 0 ? `${fmt(median(xs))} ms` : '—');
const data = {
  at: new Date().toISOString(),
  machine: machine(),
  nats: NATS_SERVER_VERSION,
  vpcs: VPCS,
  perVpc: PER_VPC,
  hosts: HOSTS,
  snapshotEvery: SNAPSHOT_EVERY,
  runs: RUNS,
  buildSeconds,
  eventsMessages: events,
  snapshotMessages: snapshots,
  loaded,
  foldMs: Object.fromEntries(Object.entries(fold).map(([k, v]) => [k, median(v)])),
  commandMs: Object.fromEntries(
    Object.entries(command)
      .filter(([, v]) => v.length > 0)
      .map(([k, v]) => [k, median(v)]),
  ),
  samples: { fold, command },
  outputs,
};
console.log(JSON.stringify(data, null, 2));

const markdown = `
## \`alcor check\` from snapshots (issue 24)

\`npm run bench:check -- --vpcs ${VPCS} --per-vpc ${PER_VPC} --hosts ${HOSTS} --snapshot-every ${SNAPSHOT_EVERY}${values.before ? ' --before <a built checkout of the previous commit>' : ''}\` — ${machine()}, nats-server ${NATS_SERVER_VERSION}, one controller and ${HOSTS} agents in the bench's process; ${data.at.slice(0, 10)}; median of ${RUNS} runs.

${fmt(VPCS)} VPCs of ${PER_VPC} commits each (${fmt(events)} EVENTS messages), a snapshot every ${SNAPSHOT_EVERY} commits: ${fmt(loaded.fromSnapshot)} VPCs loaded from a snapshot, ${fmt(loaded.fromStart)} from revision 0, ${fmt(loaded.entries)} commits replayed after the snapshots against ${fmt(loaded.fullEntries)} in the full fold. The fold alone: the previous check's (one VPC after another from revision 0) ${ms(fold.before)}, from revision 0 16 at once ${ms(fold.full)}, from the snapshots 16 at once ${ms(fold.snapshots)}. The command end to end (a child process, the ${HOSTS} agents asked too): ${values.before ? `before ${ms(command.before!)}, ` : ''}\`alcor check\` ${ms(command.check!)}, \`alcor check --full\` ${ms(command.full!)}. Reading: the fold is CPU-bound in the command's one process (decoding and folding commits, then the hosts' digests), so 16 VPCs at once from revision 0 gains little; the commits a snapshot spares are the gain.
`;
await writeReport('check', data, markdown);
process.exit(0);
