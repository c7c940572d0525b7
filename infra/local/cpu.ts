/**
 * CPU time of the machine's processes, from /proc (Linux), grouped by role: what a
 * benchmark or the demo reports as "CPU per intent per process". A process's role
 * comes from its command line (nats-server, a Kafka broker, redis-server, one of
 * our services by its main file); `self` is the calling process.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** CPU seconds (user + system) per role. */
export type CpuByRole = Map<string, number>;

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** The role of a process by its command line, or undefined for one we do not report. */
export function roleOf(cmdline: string): string | undefined {
  if (/(^|\/)nats-server[^\s/]*(\s|$)/.test(cmdline)) return 'nats-server';
  if (/kafka\.Kafka(\s|$)/.test(cmdline)) return 'kafka';
  if (/(^|\/)redis-server(\s|$)/.test(cmdline)) return 'redis';
  const service = /services\/(controller|southbound|nca|aca-bridge|demo)\/main\.[jt]s/.exec(
    cmdline,
  );
  if (service) return service[1];
  if (/services\/aca-bridge\/testAcaProcess\.[jt]s/.test(cmdline)) return 'test ACAs';
  if (/test\/bench\//.test(cmdline)) return 'bench';
  return undefined;
}

function readCpu(pid: string): { cmdline: string; seconds: number } | undefined {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime is 14th, stime 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { cmdline, seconds: ticks / TICKS_PER_SECOND };
  } catch {
    return undefined; // gone meanwhile
  }
}

/** CPU seconds so far of every process with a role (and of this one, as `self`). */
export function cpuSnapshot(selfRole = 'self'): CpuByRole {
  const out: CpuByRole = new Map();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return out; // not Linux
  }
  for (const pid of pids) {
    const cpu = readCpu(pid);
    if (!cpu) continue;
    const role = Number(pid) === process.pid ? selfRole : roleOf(cpu.cmdline);
    if (!role) continue;
    out.set(role, (out.get(role) ?? 0) + cpu.seconds);
  }
  return out;
}

/** CPU seconds spent per role between two snapshots (processes started meanwhile count whole). */
export function cpuSince(before: CpuByRole, after: CpuByRole = cpuSnapshot()): CpuByRole {
  const out: CpuByRole = new Map();
  for (const [role, seconds] of after)
    out.set(role, Math.max(0, seconds - (before.get(role) ?? 0)));
  return out;
}
