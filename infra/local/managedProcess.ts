/**
 * A server run as a child process: its output goes to a log file and a short
 * in-memory tail, readiness is polled with a bound, and it is stopped cleanly
 * (SIGTERM, then SIGKILL) — also when the parent exits or is interrupted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ServerUnavailableError } from '../../shared/index.js';
import {
  containerName,
  dockerRunArgs,
  signalContainer,
  signalContainerNow,
  type ContainerSpec,
} from './container.js';

const TAIL_LINES = 40;
const live = new Set<ManagedProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort: 'exit' handlers must be synchronous, so no graceful stop here.
  process.on('exit', () => {
    for (const proc of live) proc.killNow();
  });
}

/**
 * The servers started so far no longer keep this process alive: it exits when its
 * own work is done, and the exit hook kills them (a test file run alone, whose
 * servers no runner stops).
 */
export function detachManagedProcesses(): void {
  for (const proc of live) proc.detach();
}

export interface ManagedProcessOptions {
  /** Server name used in errors, e.g. "nats-server". */
  name: string;
  command: string;
  args: string[];
  logFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * A cgroup v2 directory the process runs in from its first instruction (a shell
   * puts itself there, then execs the command): its sockets carry that cgroup, which
   * nftables can match (test/support/netFault.ts).
   */
  cgroup?: string;
  /** Runs `command args` in a container of this image instead (infra/local/container.ts). */
  container?: ContainerSpec;
}

export class ManagedProcess {
  readonly name: string;
  readonly logFile: string;
  private readonly child: ChildProcess;
  private readonly log: WriteStream;
  private readonly tail: string[] = [];
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;
  /** The container it runs in, if it does (then `child` is its `docker run`). */
  private readonly containerName: string | undefined;

  constructor(options: ManagedProcessOptions) {
    installExitHook();
    this.name = options.name;
    this.logFile = options.logFile;
    this.log = createWriteStream(options.logFile, { flags: 'a' });
    // A log that cannot be written (its disk full) must not take the supervisor down.
    this.log.on('error', () => undefined);
    this.containerName = options.container ? containerName() : undefined;
    const [command, args] = options.container
      ? [
          'docker',
          dockerRunArgs(options.container, this.containerName!, options.command, options.args),
        ]
      : options.cgroup
        ? [
            '/bin/sh',
            [
              '-c',
              'echo $$ > "$1" && shift && exec "$@"',
              'sh',
              join(options.cgroup, 'cgroup.procs'),
              options.command,
              ...options.args,
            ],
          ]
        : [options.command, options.args];
    this.child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onData = (chunk: Buffer): void => {
      // Output can still drain from the pipes after the exit closed the log.
      if (!this.log.writableEnded) this.log.write(chunk);
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        this.tail.push(line);
        if (this.tail.length > TAIL_LINES) this.tail.shift();
      }
    };
    this.child.stdout?.on('data', onData);
    this.child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.tail.push(`spawn failed: ${err.message}`);
        this.exitInfo ??= { code: null, signal: null };
        live.delete(this);
        resolve();
      });
      this.child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        resolve();
      });
    });
    live.add(this);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  logTail(lines = 15): string {
    return this.tail.slice(-lines).join('\n');
  }

  /** Polls `ready` every `intervalMs` until it is true, the process exits, or the bound passes. */
  async waitUntilReady(
    ready: () => Promise<boolean>,
    timeoutMs: number,
    intervalMs = 100,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new ServerUnavailableError(
          this.name,
          `exited (${this.describeExit()}) before it was ready; log ${this.logFile}:\n${this.logTail()}`,
        );
      }
      try {
        if (await ready()) return;
      } catch (err) {
        lastError = err;
      }
      await delay(intervalMs);
    }
    const why = lastError instanceof Error ? ` (last check: ${lastError.message})` : '';
    await this.stop();
    throw new ServerUnavailableError(
      this.name,
      `not ready after ${timeoutMs} ms${why}; log ${this.logFile}:\n${this.logTail()}`,
      { cause: lastError },
    );
  }

  private describeExit(): string {
    const info = this.exitInfo;
    if (info === undefined) return 'running';
    return info.signal !== null ? `signal ${info.signal}` : `code ${String(info.code)}`;
  }

  /** Sends a signal without waiting (used by fault tests: SIGKILL, SIGSTOP, SIGCONT). */
  signal(signal: NodeJS.Signals): void {
    if (!this.running) return;
    if (this.containerName) void signalContainer(this.containerName, signal);
    else this.child.kill(signal);
  }

  /** No longer keeps the event loop alive (still killed when the parent exits). */
  detach(): void {
    this.child.unref();
    for (const pipe of [this.child.stdout, this.child.stderr]) (pipe as Socket | null)?.unref();
  }

  killNow(): void {
    if (!this.running) return;
    if (this.containerName) signalContainerNow(this.containerName, 'SIGKILL');
    this.child.kill('SIGKILL');
  }

  /** SIGKILL (a crash: no clean stop), resolved once the process is gone. */
  async kill(): Promise<void> {
    // A container's client exits once the container is gone (port and files freed).
    if (this.running && this.containerName) await signalContainer(this.containerName, 'SIGKILL');
    else this.killNow();
    await this.exited;
    await this.closeLog();
  }

  private async closeLog(): Promise<void> {
    if (this.log.writableEnded) return;
    await new Promise<void>((resolve) => this.log.end(resolve));
  }

  async stop(graceMs = 10_000): Promise<void> {
    if (this.running) {
      this.child.kill('SIGCONT');
      this.child.kill('SIGTERM');
      const timedOut = await Promise.race([
        this.exited.then(() => false),
        delay(graceMs, true, { ref: false }),
      ]);
      if (timedOut) {
        this.killNow();
        await this.exited;
      }
    }
    await this.closeLog();
  }
}
