/**
 * A raw JetStream anchor whose client is not the limit: the NATS CLI's own
 * benchmark (`nats bench js pub async`, the Go client), built once from the Go
 * module proxy into `.cache/bin`. Node's client spends ~30 µs of CPU per publish;
 * the Go client a few, so the server sets the pace.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { cpuSince, cpuSnapshot, repoRoot } from '../../infra/index.js';

export const NATS_CLI_VERSION = 'v0.5.1';

/** The CLI's path, built if missing; or why it is not available. */
export function natsCli(): { path: string } | { missing: string } {
  const bin = join(repoRoot, '.cache', 'bin');
  const path = join(bin, `nats-cli-${NATS_CLI_VERSION}`);
  if (existsSync(path)) return { path };
  mkdirSync(bin, { recursive: true });
  const gobin = join(bin, 'natscli-build');
  const built = spawnSync(
    'go',
    ['install', `github.com/nats-io/natscli/nats@${NATS_CLI_VERSION}`],
    { env: { ...process.env, GOBIN: gobin }, encoding: 'utf8', timeout: 600_000 },
  );
  if (built.error || built.status !== 0)
    return {
      missing: `go install natscli failed: ${built.error?.message ?? built.stderr.slice(-300)}`,
    };
  renameSync(join(gobin, 'nats'), path);
  return { path };
}

export interface CliAnchor {
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  /** % of a core: the CLI (user + sys), and nats-server. */
  cpuPercent: Record<string, number>;
}

/**
 * `messages` messages of `size` bytes from `clients` connections, `window` async
 * publishes outstanding each, a msgId each (dedup), over `subjects` subjects, into
 * a file stream of its own.
 */
export async function runCliAnchor(
  cli: string,
  url: string,
  o: { messages: number; size: number; clients: number; window: number; subjects: number },
): Promise<CliAnchor> {
  const args = [
    'bench',
    'js',
    'pub',
    'async',
    'rawcli',
    '--server',
    url,
    '--stream',
    'RAWCLI',
    '--create',
    '--storage',
    'file',
    '--clients',
    String(o.clients),
    '--msgs',
    String(o.messages),
    '--size',
    String(o.size),
    '--batch',
    String(o.window),
    '--dedup',
    '--multisubject',
    '--multisubjectmax',
    String(o.subjects),
    '--no-progress',
    // A server with TLS: verified with the run's CA, as the product's clients do.
    ...(url.startsWith('tls://') && process.env.NATS_CA_FILE
      ? ['--tlsca', process.env.NATS_CA_FILE]
      : []),
  ];
  const quoted = [cli, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  const before = cpuSnapshot('bench');
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', ['-c', `TIMEFORMAT='%R %U %S'; time ${quoted}`]);
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(text) : reject(new Error(`nats bench exited ${code}: ${text}`)),
    );
  });
  const server = cpuSince(before, cpuSnapshot('bench')).get('nats-server') ?? 0;
  const times = /(\d+\.\d+) (\d+\.\d+) (\d+\.\d+)\s*$/.exec(output.trim());
  if (!times) throw new Error(`nats bench: no timing in its output: ${output.slice(-300)}`);
  const [real, user, sys] = times.slice(1).map(Number) as [number, number, number];
  return {
    messages: o.messages,
    seconds: real,
    messagesPerSecond: o.messages / real,
    cpuPercent: {
      'nats CLI': Math.round((100 * (user + sys)) / real),
      'nats-server': Math.round((100 * server) / real),
    },
  };
}
