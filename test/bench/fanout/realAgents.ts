/**
 * Real agents for the MQ evaluation's JetStream modes (issue 27): hosts with a
 * NATS connection of their own, run by child processes (agentWorker.ts) of at most
 * `perProcess` connections each — a process here may hold 20,000 file descriptors —
 * while the caller simulates the rest on shared connections. Their receipts go to
 * the caller's {@link Tally}; after a broker restart, {@link RealAgents.awaitRecovered}
 * says how long the agents took to reconnect and resync.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../../../infra/index.js';
import { pct } from '../report.js';
import {
  DISCONNECTED,
  RECONNECTED,
  RESYNCED,
  type AgentMode,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
  type WorkerUsage,
} from './agentWorker.js';
import type { Tally } from './tally.js';
import type { FanoutWorkload } from './workload.js';

export interface RealAgentsOptions {
  workload: FanoutWorkload;
  /** What the workload was built from (each worker builds it again, the same). */
  args: { hosts: number; intents: number; zipf: number; seed: number };
  mode: AgentMode;
  /** The hosts run with a connection of their own (the rest stay simulated by the caller). */
  hostIds: string[];
  /** Client URL of each NATS node; agents are spread over them in turn. */
  urls: string[];
  /** Connections per worker process (default 5,000). */
  perProcess?: number;
  /** Receipts go to tally.received(hostId, key ?? undefined, weight). */
  tally: Tally;
  progress?: (text: string) => void;
  /** Workers started at once (default 2). */
  startConcurrency?: number;
  /**
   * Each agent reconnects to its own node only (default: to any, its own first).
   * A node holds < 20,000 connections here: 50,000 agents on 3 nodes cannot all
   * fail over to the 2 left while one restarts.
   */
  pinToNode?: boolean;
  /** Connects in flight per worker (default 100). */
  connectConcurrency?: number;
  /** Reconnect wait and its random spread per agent (defaults 250 ms and 500 ms). */
  reconnectWaitMs?: number;
  reconnectJitterMs?: number;
  /** A directory of per-host nkey seeds (`<hostId>.nk`): each agent connects as its host's user. */
  hostCredentials?: string;
  /** CA of a `tls://` server. */
  caFile?: string;
}

export interface Recovery {
  /** Real agents that lost their connection since `since`. */
  agents: number;
  reconnected: number;
  resynced: number;
  /** Ms from `since`. */
  reconnectP50Ms: number;
  reconnectP99Ms: number;
  reconnectMaxMs: number;
  resyncP50Ms: number;
  resyncP99Ms: number;
  resyncMaxMs: number;
}

export interface RealAgents {
  real: number;
  processes: number;
  /** Connections the workers opened (one per real agent). */
  connections: number;
  /** Subscriptions when they were ready (joins and leaves change it later). */
  subscriptions: number;
  /** Joins caught up by a resync so far (hierarchical). */
  readonly catchUps: number;
  /** Resolves once every real agent that lost its connection since `since` has reconnected and resynced, or at timeout: counts and timings (ms from `since`) p50/p99/max for reconnect and resync, and how many did not. */
  awaitRecovered(since: number, timeoutMs: number): Promise<Recovery>;
  /** Summed CPU (since each worker started) and RSS, max event-loop p99 (since ready) over workers; each worker's in `workers`. `collect`: each worker runs a full GC first (a clean heap figure; it stalls them a moment). */
  usage(options?: { collect?: boolean }): Promise<{
    cpuSeconds: number;
    rssMb: number;
    eventLoopP99Ms: number;
    workers: WorkerUsage[];
  }>;
  /** Stops every worker; throws afterwards if one had died. */
  stop(): Promise<void>;
}

const WORKER = fileURLToPath(new URL('./agentWorker.ts', import.meta.url));

const maxOf = (xs: readonly number[]): number =>
  xs.length === 0 ? NaN : xs.reduce((m, x) => Math.max(m, x), -Infinity);

type Reply = Extract<FromWorker, { id: number }>;
/** A request's reply. */
interface Replies {
  usage: Extract<Reply, { t: 'usage' }>;
  flush: Extract<Reply, { t: 'flushed' }>;
  stop: Extract<Reply, { t: 'stopped' }>;
}

/** One worker process and its requests. */
class Worker {
  readonly child: ChildProcess;
  private readonly waiting = new Map<
    number,
    { resolve: (r: Reply) => void; fail: (e: Error) => void }
  >();
  private nextId = 1;
  private stderrTail = '';
  private onReady:
    | {
        resolve: (r: { connections: number; subscriptions: number }) => void;
        fail: (e: Error) => void;
      }
    | undefined;
  /** Set when it exited unasked. */
  failure: Error | undefined;
  stopping = false;
  readonly exited: Promise<void>;

  constructor(
    readonly n: number,
    private readonly onMessage: (m: FromWorker) => void,
  ) {
    this.child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', WORKER], {
      cwd: repoRoot,
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    this.child.on('error', (err) => {
      this.failure ??= new Error(`agent worker ${n} failed: ${err.message}`, { cause: err });
      this.onReady?.fail(this.failure);
      for (const w of this.waiting.values()) w.fail(this.failure);
      this.waiting.clear();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-4000);
    });
    this.child.on('message', (m: FromWorker) => {
      if (m.t === 'ready') {
        this.onReady?.resolve(m);
        this.onReady = undefined;
      } else if ('id' in m) {
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        w?.resolve(m);
      } else this.onMessage(m);
    });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        if (!this.stopping) {
          this.failure = new Error(
            `agent worker ${this.n} (pid ${this.child.pid}) exited (${signal ?? `code ${code}`})${this.stderrTail ? `; stderr ends:\n${this.stderrTail}` : ''}`,
          );
          this.onReady?.fail(this.failure);
          for (const w of this.waiting.values()) w.fail(this.failure);
          this.waiting.clear();
        }
        resolve();
      });
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  init(message: WorkerInit): Promise<{ connections: number; subscriptions: number }> {
    return new Promise((resolve, fail) => {
      if (this.failure) return fail(this.failure);
      this.onReady = { resolve, fail };
      this.child.send(message satisfies ToWorker);
    });
  }

  request<T extends keyof Replies>(t: T, extra: { collect?: boolean } = {}): Promise<Replies[T]> {
    return new Promise((resolve, fail) => {
      if (this.failure) return fail(this.failure);
      const id = this.nextId++;
      this.waiting.set(id, { resolve: resolve as (r: Reply) => void, fail });
      const message = { t, id, ...extra } as ToWorker;
      this.child.send(message);
    });
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    this.stopping = true;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    try {
      await Promise.race([this.request('stop').catch(() => undefined), this.exited]);
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

export async function startRealAgents(options: RealAgentsOptions): Promise<RealAgents> {
  const { workload, tally, hostIds } = options;
  const say = options.progress ?? (() => undefined);
  const perProcess = options.perProcess ?? 5000;
  const processes = Math.max(1, Math.ceil(hostIds.length / perProcess));
  const hostIdOf = workload.hosts.map((h) => h.hostId);
  // Per host index, the current outage: when it began, the agent reconnected, resynced (0: not).
  const down = new Float64Array(hostIdOf.length);
  const back = new Float64Array(hostIdOf.length);
  const synced = new Float64Array(hostIdOf.length);
  let catchUps = 0;
  const onMessage = (m: FromWorker): void => {
    if (m.t === 'rx') {
      catchUps += m.catchUps;
      for (const [key, weight, hosts] of m.r)
        for (const i of hosts) tally.received(hostIdOf[i]!, key ?? undefined, weight);
    } else if (m.t === 'conn') {
      for (const [kind, i, at] of m.e) {
        if (kind === DISCONNECTED) {
          down[i] = at;
          back[i] = 0;
          synced[i] = 0;
        } else if (kind === RECONNECTED) back[i] = at;
        else if (kind === RESYNCED) synced[i] = at;
      }
    } else if (m.t === 'progress') say(`agents: a worker has ${m.connected} of ${m.of} connected`);
  };

  // Balanced shares, in order (a worker's hosts are neighbours: clusters stay together).
  const shares = Array.from({ length: processes }, (_, p) =>
    hostIds.slice(
      Math.floor((p * hostIds.length) / processes),
      Math.floor(((p + 1) * hostIds.length) / processes),
    ),
  );
  const workers: Worker[] = [];
  let connections = 0;
  let subscriptions = 0;
  let started = 0;
  const startOne = async (p: number): Promise<void> => {
    const worker = new Worker(p, onMessage);
    workers.push(worker);
    const ready = await worker.init({
      t: 'init',
      workload: options.args,
      mode: options.mode,
      hostIds: shares[p]!,
      urls: options.urls,
      start: Math.floor((p * hostIds.length) / processes),
      ...(options.hostCredentials === undefined
        ? {}
        : { hostCredentials: options.hostCredentials }),
      ...(options.caFile === undefined ? {} : { caFile: options.caFile }),
      ...(options.pinToNode ? { pinToNode: true } : {}),
      ...(options.connectConcurrency === undefined
        ? {}
        : { connectConcurrency: options.connectConcurrency }),
      ...(options.reconnectWaitMs === undefined
        ? {}
        : { reconnectWaitMs: options.reconnectWaitMs }),
      ...(options.reconnectJitterMs === undefined
        ? {}
        : { reconnectJitterMs: options.reconnectJitterMs }),
    });
    connections += ready.connections;
    subscriptions += ready.subscriptions;
    started += 1;
    say(`agents: ${started} of ${processes} workers ready (${connections} connections)`);
  };
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: Math.min(options.startConcurrency ?? 2, processes) }, async () => {
        while (next < processes) await startOne(next++);
      }),
    );
  } catch (err) {
    await Promise.allSettled(workers.map((w) => w.stop()));
    throw err;
  }

  const failed = (): Error | undefined => workers.find((w) => w.failure)?.failure;

  return {
    real: hostIds.length,
    processes,
    connections,
    subscriptions,
    get catchUps() {
      return catchUps;
    },
    async awaitRecovered(since, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        // Each worker sends what it has (the channel keeps order), then its agents not up.
        const replies = await Promise.all(workers.map((w) => w.request('flush')));
        if (replies.every((r) => r.pending === 0) || Date.now() >= deadline) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const reconnect: number[] = [];
      const resync: number[] = [];
      let agents = 0;
      for (let i = 0; i < down.length; i++) {
        if (down[i]! === 0 || down[i]! < since) continue;
        agents += 1;
        if (back[i]! > 0) reconnect.push(back[i]! - since);
        if (synced[i]! > 0) resync.push(synced[i]! - since);
      }
      return {
        agents,
        reconnected: reconnect.length,
        resynced: resync.length,
        reconnectP50Ms: pct(reconnect, 50),
        reconnectP99Ms: pct(reconnect, 99),
        reconnectMaxMs: maxOf(reconnect),
        resyncP50Ms: pct(resync, 50),
        resyncP99Ms: pct(resync, 99),
        resyncMaxMs: maxOf(resync),
      };
    },
    async usage(options) {
      const replies = await Promise.all(
        workers.map((w) => w.request('usage', { collect: options?.collect === true })),
      );
      const per: WorkerUsage[] = replies.map(({ t: _t, id: _id, ...usage }) => usage);
      return {
        cpuSeconds: per.reduce((s, w) => s + w.cpuSeconds, 0),
        rssMb: per.reduce((s, w) => s + w.rssMb, 0),
        eventLoopP99Ms: Math.max(...per.map((w) => w.eventLoopP99Ms)),
        workers: per,
      };
    },
    async stop() {
      await Promise.allSettled(workers.map((w) => w.stop()));
      const err = failed();
      if (err) throw err;
    },
  };
}
