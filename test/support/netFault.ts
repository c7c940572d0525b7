/**
 * Real network faults between processes on this machine: each process that may be
 * cut runs in a cgroup v2 of its own (ManagedProcess `cgroup`), and a cut is an
 * nftables table that matches the packets of that cgroup's sockets to or from
 * given ports, marks their connection (conntrack), and drops or resets every packet
 * of a marked connection both ways. The kernel's TCP sees it as a network does:
 * drops are retransmitted and time out, resets end connections, new connections
 * are not made while it lasts. Needs root, nft and a cgroup v2 mount; `available`
 * says why not.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where the cgroup v2 hierarchy is: its directory, and its path as nft names it (under /sys/fs/cgroup). */
export function cgroupRoot(): { dir: string; nftPrefix: string } | undefined {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers'))
    return { dir: '/sys/fs/cgroup', nftPrefix: '' };
  if (existsSync('/sys/fs/cgroup/unified/cgroup.procs'))
    return { dir: '/sys/fs/cgroup/unified', nftPrefix: 'unified/' };
  return undefined;
}

export interface Cut {
  /** Ends it: the table goes, packets flow again. */
  heal: () => Promise<void>;
}

export interface CutSpec {
  /** The cgroup (a name given to `cgroup()`) whose sockets are cut. */
  group: string;
  /** Ports its sockets send to (the far side's listeners). */
  to?: readonly number[];
  /** Ports its sockets listen on whose connections are cut too (a server's). */
  from?: readonly number[];
  /** drop: a black hole (timeouts); reset: every packet answered by a TCP reset. */
  mode: 'drop' | 'reset';
}

export class NetFaults {
  private readonly root = cgroupRoot();
  private readonly base: string;
  private readonly made: string[] = [];
  private cuts = 0;
  private readonly tables = new Set<string>();

  private constructor(
    private readonly run: string,
    readonly available: true | string,
  ) {
    this.base = this.root ? join(this.root.dir, `alcor-${run}`) : '';
  }

  /** Checks that nft and a writable cgroup v2 are here. */
  static async open(runId: string): Promise<NetFaults> {
    const id = runId.replace(/[^a-z0-9]/gi, '').slice(0, 16);
    const root = cgroupRoot();
    if (!root) return new NetFaults(id, 'no cgroup v2 hierarchy under /sys/fs/cgroup');
    if (process.getuid?.() !== 0) return new NetFaults(id, 'not root (nft needs it)');
    try {
      await run('nft', ['list', 'tables'], { timeout: 5000 });
    } catch (err) {
      return new NetFaults(id, `nft does not run: ${(err as Error).message.split('\n')[0]}`);
    }
    const faults = new NetFaults(id, true);
    try {
      mkdirSync(faults.base, { recursive: true });
    } catch (err) {
      return new NetFaults(id, `cannot make a cgroup: ${(err as Error).message}`);
    }
    return faults;
  }

  /** The directory of a cgroup for one process (made once). */
  cgroup(name: string): string {
    if (this.available !== true) throw new Error(`network faults unavailable: ${this.available}`);
    const dir = join(this.base, name);
    if (!existsSync(dir)) {
      mkdirSync(dir);
      this.made.push(dir);
    }
    return dir;
  }

  /** Cuts the group's connections to (and from) the ports until healed. */
  async cut(spec: CutSpec): Promise<Cut> {
    if (this.available !== true) throw new Error(`network faults unavailable: ${this.available}`);
    const n = ++this.cuts;
    const table = `alcor_${this.run}_${n}`;
    const mark = `0x${(0xa1c0000 + n).toString(16)}`;
    const path = `${this.root!.nftPrefix}alcor-${this.run}/${spec.group}`;
    const sock = `socket cgroupv2 level 2 "${path}"`;
    const ports = (xs: readonly number[]) => `{ ${xs.join(', ')} }`;
    // A reset's own RST belongs to the marked connection: it must pass.
    const verdict = spec.mode === 'drop' ? 'drop' : 'tcp flags & rst == 0 reject with tcp reset';
    const rules = [
      `add table inet ${table}`,
      `add chain inet ${table} out { type filter hook output priority 0; }`,
      `add chain inet ${table} in { type filter hook input priority 0; }`,
      ...(spec.to?.length
        ? [`add rule inet ${table} out ${sock} tcp dport ${ports(spec.to)} ct mark set ${mark}`]
        : []),
      ...(spec.from?.length
        ? [`add rule inet ${table} out ${sock} tcp sport ${ports(spec.from)} ct mark set ${mark}`]
        : []),
      `add rule inet ${table} out ct mark ${mark} ${verdict}`,
      `add rule inet ${table} in ct mark ${mark} ${verdict}`,
    ];
    await nft(rules);
    this.tables.add(table);
    return {
      heal: async () => {
        if (!this.tables.delete(table)) return;
        await nft([`delete table inet ${table}`]);
      },
    };
  }

  /** Heals every cut and removes the cgroups (once their processes are gone). */
  async close(): Promise<void> {
    for (const t of [...this.tables]) {
      this.tables.delete(t);
      await nft([`delete table inet ${t}`]).catch(() => undefined);
    }
    // A cgroup goes once its last process has exited (a moment after a kill); the
    // run's own directory once its cgroups are gone (its control files do not count).
    for (const dir of [...this.made.reverse(), ...(this.base ? [this.base] : [])]) {
      for (let attempt = 0; attempt < 10 && existsSync(dir); attempt++) {
        try {
          rmdirSync(dir);
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
  }
}

/** Runs nft commands as one transaction (a file on stdin). */
async function nft(commands: readonly string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile('nft', ['-f', '-'], { timeout: 10_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`nft: ${stderr.trim() || err.message}`)) : resolve(),
    );
    child.stdin?.end(commands.join('\n') + '\n');
  });
}
