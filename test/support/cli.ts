/** Runs the `alcor` CLI as a user would: a child process, its output and exit code. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { putHosts, repoRoot } from '../../infra/index.js';
import type { HostRecord } from '../../shared/index.js';
import type { Controller, ControllerConfigInput } from '../../services/controller/index.js';
import { startFleet, type Fleet } from '../../services/nca/fleet.js';
import { isolatedNats, startTestController, testLog, type IsolatedNats } from './controller.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  env: Record<string, string> = {},
  stdin?: string,
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [join(repoRoot, 'services/cli/bin.js'), ...args],
      { cwd: repoRoot, env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(stdin ?? '');
  });
}

/**
 * What the CLI tests run against: a nats-server of their own with `hosts`
 * registered, one controller (options: its config, e.g. a Redis URL) and the
 * hosts' agents in this process; the CLI itself is always a child process.
 */
export interface CliSystem {
  nats: IsolatedNats;
  controller: Controller;
  agents: Fleet;
  /** `alcor <args>` against this system. */
  cli: (args: string[], stdin?: string) => Promise<CliResult>;
  stop: () => Promise<void>;
}

export async function startCliSystem(
  hosts: HostRecord[],
  fleetId: string,
  controller: Partial<ControllerConfigInput> = {},
): Promise<CliSystem> {
  const nats = await isolatedNats();
  await putHosts(nats.nc, hosts);
  const ctl = await startTestController(nats.url, controller);
  const agents = await startFleet({
    natsUrl: nats.url,
    kafka: {},
    hosts,
    logger: testLog,
    fleetId,
  });
  return {
    nats,
    controller: ctl,
    agents,
    cli: (args, stdin) => runCli(args, { NATS_URL: nats.url }, stdin),
    stop: async () => {
      await agents.stop();
      await ctl.stop();
      await nats.stop();
    },
  };
}

const SNAKE = /^[a-z0-9]+(_[a-z0-9]+)*$/;

/**
 * The CLI's `--json` as scripts read it: fails on any key that is not snake_case
 * (at any depth; keys that are data, such as error codes and binding labels, are
 * snake_case or lowercase too), then returns it as parsed.
 */
export function readJson<T>(stdout: string): T {
  const value = JSON.parse(stdout) as unknown;
  const walk = (v: unknown, path: string): void => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (v !== null && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        if (!SNAKE.test(k) && !/^[a-z0-9:._-]+$/.test(k))
          throw new Error(`JSON key ${JSON.stringify(k)} at ${path || '.'} is not snake_case`);
        walk(x, `${path}.${k}`);
      }
  };
  walk(value, '');
  return value as T;
}

/** {@link readJson}, then keys in the code's own camelCase, for checks written against its types. */
export function readJsonCamel<T>(stdout: string): T {
  const camel = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(camel)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v).map(([k, x]) => [
              k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()),
              camel(x),
            ]),
          )
        : v;
  return camel(readJson(stdout)) as T;
}
