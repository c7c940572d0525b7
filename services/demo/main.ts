/**
 * `./scripts/demo.sh [--keep-running] [--log-level L]` — the main job.
 * Prints a health table; with --keep-running it then prints `NAME=value` endpoint
 * lines and `READY`, and keeps everything up until Ctrl-C.
 */
import { parseArgs } from 'node:util';
import { createLogger, onShutdown } from '../../infra/index.js';
import { start, type Demo } from './index.js';

const USAGE = `Usage: demo [options]

  --keep-running     leave the servers up; print NAME=value endpoints and READY
  --kafka-clusters   comma-separated Kafka cluster ids (default: a,b)
  --log-level        trace|debug|info|warn|error|silent (default: warn)
  -h, --help         this text
`;

let parsed;
try {
  parsed = parseArgs({
    options: {
      'keep-running': { type: 'boolean', default: false },
      'kafka-clusters': { type: 'string' },
      'log-level': { type: 'string', default: 'warn' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
const args = parsed.values;
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const log = createLogger({ name: 'demo', level: args['log-level'] as 'info' });
const out = (line: string): boolean => process.stdout.write(`${line}\n`);
let demo: Demo | undefined;
onShutdown(async () => {
  await demo?.stop();
});

try {
  const kafkaClusters = args['kafka-clusters']?.split(',').filter(Boolean);
  demo = await start({ log, ...(kafkaClusters ? { kafkaClusters } : {}) });
} catch (err) {
  process.stderr.write(`demo: could not start: ${(err as Error).message}\n`);
  process.exit(1);
}

out('\nAlcor Southbound — servers');
const width = Math.max(...demo.health.map((r) => r.server.length));
for (const row of demo.health) {
  out(
    `  ${row.healthy ? '✔' : '✘'} ${row.server.padEnd(width)}  ${row.version.padEnd(8)} ${row.endpoint}  (${row.source})  ${row.detail}`,
  );
}
for (const s of [demo.servers.nats, demo.servers.redis, ...Object.values(demo.servers.kafka)]) {
  if (s.warning) out(`  WARNING ${s.name}: ${s.warning}`);
}
const healthy = demo.health.every((r) => r.healthy);
out(
  `\n${healthy ? 'all servers healthy' : 'some servers are NOT healthy'}; the controller, southbound module and NCA agents run on their own for now (npm run controller | southbound | nca; docs/controller.md, docs/southbound.md); the demo drives them end to end with issue 7`,
);

if (args['keep-running'] && healthy) {
  for (const [name, value] of Object.entries(demo.endpoints)) out(`${name}=${value}`);
  out('READY');
} else {
  await demo.stop();
  process.exit(healthy ? 0 : 1);
}
