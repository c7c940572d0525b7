/**
 * Bytes on the wire of a run, counted by nftables (TCP/IP headers included; every
 * loopback packet passes the output hook once, and the input hook once). The
 * bench process moves itself into a cgroup v2 of its own once the brokers are up,
 * so the sockets it opens from then on (publisher, agents, readers, and the real
 * agents' worker processes it starts) carry that cgroup:
 *
 * - client bytes = what those sockets send + what they receive;
 * - between brokers = every other TCP byte sent meanwhile (routes, replication,
 *   the KRaft quorum — Kafka replicates over the client listener, so ports could
 *   not tell them apart).
 *
 * Needs root, nft and a cgroup v2 mount; without them the run goes on without
 * these counts.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupRoot } from '../../support/netFault.js';

const TABLE = 'alcor_fanout_wire';
const GROUP = 'alcor-fanout-clients';

export interface WireBytes {
  /** Sent and received by the bench's sockets (publisher and agents). */
  client: number;
  /** Every other TCP byte sent meanwhile: between brokers. */
  peers: number;
}

const nft = (args: string[]): string =>
  execFileSync('nft', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

export class WireCounter {
  private constructor(private readonly root: string) {}

  /**
   * Moves this process into the clients' cgroup and starts counting; call it
   * after the brokers started (they stay out) and before the clients connect.
   */
  static open(): WireCounter | undefined {
    const root = cgroupRoot();
    if (!root || process.getuid?.() !== 0) return undefined;
    try {
      nft(['delete', 'table', 'inet', TABLE]);
    } catch {
      // None left from an earlier run.
    }
    try {
      const dir = join(root.dir, GROUP);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'cgroup.procs'), String(process.pid));
      const sock = `socket cgroupv2 level 1 "${root.nftPrefix}${GROUP}"`;
      nft(['add', 'table', 'inet', TABLE]);
      for (const [chain, hook] of [
        ['out', 'output'],
        ['in', 'input'],
      ])
        nft([
          'add',
          'chain',
          'inet',
          TABLE,
          chain!,
          `{ type filter hook ${hook} priority 0 ; policy accept ; }`,
        ]);
      // out: [clients' sends, all TCP sent]; in: [clients' receipts].
      nft(['add', 'rule', 'inet', TABLE, 'out', `meta l4proto tcp ${sock} counter`]);
      nft(['add', 'rule', 'inet', TABLE, 'out', 'meta l4proto tcp counter']);
      nft(['add', 'rule', 'inet', TABLE, 'in', `meta l4proto tcp ${sock} counter`]);
      return new WireCounter(root.dir);
    } catch {
      new WireCounter(root.dir).close();
      return undefined;
    }
  }

  read(): WireBytes {
    const counters = (chain: string): number[] => {
      const out = JSON.parse(nft(['-j', 'list', 'chain', 'inet', TABLE, chain])) as {
        nftables: Array<{ rule?: { expr: Array<{ counter?: { bytes: number } }> } }>;
      };
      return out.nftables.flatMap((x) =>
        x.rule ? [x.rule.expr.find((e) => e.counter)?.counter?.bytes ?? 0] : [],
      );
    };
    const [sent = 0, total = 0] = counters('out');
    const [received = 0] = counters('in');
    return { client: sent + received, peers: total - sent - received };
  }

  /** Back to the root cgroup; the counters go. */
  close(): void {
    try {
      writeFileSync(join(this.root, 'cgroup.procs'), String(process.pid));
    } catch {
      // Not moved.
    }
    try {
      nft(['delete', 'table', 'inet', TABLE]);
    } catch {
      // Gone already.
    }
    try {
      rmdirSync(join(this.root, GROUP));
    } catch {
      // Worker processes still in it (they exit in a moment): left for the next run.
    }
  }
}

/** `a − b`, field by field. */
export const wireSince = (a: WireBytes, b: WireBytes): WireBytes => ({
  client: a.client - b.client,
  peers: a.peers - b.peers,
});
