/**
 * A server run in a container instead of as a process of this machine: the
 * scaled-out set-ups on a Docker engine (infra/servers.ts). The container shares
 * this machine's network (its ports are 127.0.0.1's, as a local process's are) and
 * sees the run's folders at their own paths, so one set of configuration files and
 * one set of readiness checks serve both ways; it runs as this user, so what it
 * writes is this user's to remove. It runs attached (`docker run` in the
 * foreground): ManagedProcess keeps its log, its exit and its clean stop (the
 * client passes SIGTERM and SIGHUP on); what a client cannot pass on (SIGKILL,
 * SIGSTOP) goes to the engine (`docker kill`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { run, type ExecResult } from './exec.js';

export interface ContainerSpec {
  /** An image with the server's program (deploy/docker/Dockerfile). */
  image: string;
  /** Folders the container sees at their own paths (the run's, the TLS files'). */
  mounts: readonly string[];
}

let made = 0;

/** A name for a container no other run of this machine uses. */
export function containerName(): string {
  made += 1;
  return `alcor-${process.pid}-${made}-${Date.now().toString(36)}`;
}

/** `docker run`'s arguments: `command args` in a container of `spec`, removed when it exits. */
export function dockerRunArgs(
  spec: ContainerSpec,
  name: string,
  command: string,
  args: readonly string[],
): string[] {
  const user = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
  return [
    'run', '--rm', '--name', name, '--network', 'host', '--user', user,
    ...[...new Set(spec.mounts)].flatMap((m) => ['--volume', `${m}:${m}`]),
    '--entrypoint', command, spec.image, ...args,
  ]; // prettier-ignore
}

/** Runs a one-shot command (a storage format, a cluster's forming) in a container. */
export function runInContainer(
  spec: ContainerSpec,
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number } = {},
): Promise<ExecResult> {
  return run('docker', dockerRunArgs(spec, containerName(), command, args), options);
}

/** Runs a one-shot command here, or in a container of `spec` when there is one. */
export function runHereOrIn(
  spec: ContainerSpec | undefined,
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number } = {},
): Promise<ExecResult> {
  return spec ? runInContainer(spec, command, args, options) : run(command, [...args], options);
}

/** Sends a signal to a container through the engine; resolves when the engine has. */
export function signalContainer(name: string, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn('docker', ['kill', '--signal', signal, name], { stdio: 'ignore' });
    child.on('error', () => resolve());
    child.on('exit', () => resolve());
  });
}

/** The same, synchronously (an 'exit' handler may do nothing else). */
export function signalContainerNow(name: string, signal: NodeJS.Signals): void {
  spawnSync('docker', ['kill', '--signal', signal, name], { stdio: 'ignore', timeout: 10_000 });
}
