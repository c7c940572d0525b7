/**
 * A child process of the MQ evaluation (issue 27) running real agents: each of
 * its hosts has one NATS connection of its own, as a deployment's agent does, and
 * subscribes to exactly what the JetStream mode gives it (`unicast`: its own
 * subject; `hierarchical`: its own subject and its VPCs' multicasts, following
 * joins and leaves). What they receive goes to the parent (realAgents.ts) in
 * batches, which counts it in its {@link Tally}. After a broker restart each agent
 * reconnects and resyncs (a direct get on the stream, as the product's agent asks
 * for its state), and the worker reports when.
 *
 * Spawned as `node --expose-gc --import tsx agentWorker.ts` with an IPC channel; the protocol
 * is {@link ToWorker} / {@link FromWorker}. Hosts are named by their index in the
 * workload (`workload.hosts`), which the worker builds again from the same arguments.
 */
import { readFileSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { nkeySeedAuthenticator } from '../../../infra/nats/nkeyAuth.js';
import { streams, subjects, type HostRecord } from '../../../shared/index.js';
import { KEY_HEADER } from './tally.js';
import { buildWorkload } from './workload.js';

export type AgentMode = 'unicast' | 'hierarchical';

export interface WorkerInit {
  t: 'init';
  workload: { hosts: number; intents: number; zipf: number; seed: number };
  mode: AgentMode;
  /** The hosts this worker runs. */
  hostIds: string[];
  /** Client URL of each NATS node; host j of this worker starts on urls[(start + j) % n]. */
  urls: string[];
  start: number;
  /**
   * Each agent knows its own node only (no failover to the others, cluster updates
   * ignored): after a node restart its agents wait for it, rather than piling onto
   * the other nodes (each may hold < 20,000 connections here).
   */
  pinToNode?: boolean;
  /** A directory of per-host nkey seeds (`<hostId>.nk`): each host connects as its own user. */
  hostCredentials?: string;
  /** CA of a `tls://` server. */
  caFile?: string;
  /** Connects in flight at once (default 100). */
  connectConcurrency?: number;
  /** Reconnect wait and its random spread (defaults 250 ms and 500 ms). */
  reconnectWaitMs?: number;
  reconnectJitterMs?: number;
}

/** A worker's own use of the machine (what `usage` answers). */
export interface WorkerUsage {
  pid: number;
  connections: number;
  cpuSeconds: number;
  rssMb: number;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  /** RSS with the workload built, before the first connection. */
  rssBeforeConnectMb: number;
  /** V8 heap and memory outside it (buffers), now and before the first connection (after a GC). */
  heapMb: number;
  heapBeforeConnectMb: number;
}

export type ToWorker =
  | WorkerInit
  /** `collect`: a full GC first (the heap then holds what is live). */
  | { t: 'usage'; id: number; collect?: boolean }
  | { t: 'flush'; id: number }
  | { t: 'stop'; id: number };

/**
 * Receipts grouped by message: `[key (null: a resync's full state), weight, host indexes]`.
 * Connection events: `[kind, host index, Date.now()]`, kind 0 disconnected (a new
 * outage), 1 reconnected, 2 resynced (the outage is over).
 */
export type FromWorker =
  | { t: 'progress'; connected: number; of: number }
  | { t: 'ready'; connections: number; subscriptions: number }
  | { t: 'rx'; r: Array<[string | null, number, number[]]>; catchUps: number }
  | { t: 'conn'; e: Array<[0 | 1 | 2, number, number]> }
  | ({ t: 'usage'; id: number } & WorkerUsage)
  | { t: 'flushed'; id: number; pending: number; connections: number }
  | { t: 'stopped'; id: number };

export const DISCONNECTED = 0;
export const RECONNECTED = 1;
export const RESYNCED = 2;

interface Agent {
  h: HostRecord;
  idx: number;
  nc: NatsConnection;
  jsm: JetStreamManager | undefined;
  /** Multicast subject → its subscription (the own subject's is not in here). */
  follows: Map<string, Subscription>;
  /** Keys received (hierarchical: what a catch-up need not credit). */
  got: Set<string>;
  state: 'up' | 'down' | 'resyncing';
  resyncLoop: boolean;
  /** The subject the resync check reads. */
  checkSubject: string;
}

/** What a join or leave says (unicast deliveries only). */
interface Membership {
  target: string;
  vpcId: string;
  revision: number;
  joins: boolean;
}

const send = (msg: FromWorker): void => {
  if (process.connected) process.send!(msg);
};

const decoder = new TextDecoder();
const revisionOf = (data: Uint8Array): number =>
  (JSON.parse(decoder.decode(data)) as { revision: number }).revision;

// ── Batches to the parent ───────────────────────────────────────────────────

let receipts = new Map<string, [string | null, number, number[]]>();
let pendingReceipts = 0;
let catchUps = 0;
let events: Array<[0 | 1 | 2, number, number]> = [];
let flushTimer: NodeJS.Timeout | undefined;

function flushBatches(): void {
  if (flushTimer) clearTimeout(flushTimer);
  flushTimer = undefined;
  if (pendingReceipts > 0 || catchUps > 0) {
    send({ t: 'rx', r: [...receipts.values()], catchUps });
    receipts = new Map();
    pendingReceipts = 0;
    catchUps = 0;
  }
  if (events.length > 0) {
    send({ t: 'conn', e: events });
    events = [];
  }
}

function soon(): void {
  if (pendingReceipts + events.length >= 1000) flushBatches();
  else flushTimer ??= setTimeout(flushBatches, 20);
}

function rx(idx: number, key: string | null, weight: number): void {
  const group = `${key ?? ''}|${weight}`;
  let entry = receipts.get(group);
  if (!entry) receipts.set(group, (entry = [key, weight, []]));
  entry[2].push(idx);
  pendingReceipts += 1;
  soon();
}

function event(kind: 0 | 1 | 2, a: Agent): void {
  events.push([kind, a.idx, Date.now()]);
  soon();
}

// ── The agents ──────────────────────────────────────────────────────────────

const agents: Agent[] = [];
let init: WorkerInit;
/** Joins and leaves of this worker's hosts, by key. */
const memberships = new Map<string, Membership>();
/** Per multicast subject, its deliveries: [revision, key], in publish order. */
const multicastLog = new Map<string, Array<[number, string]>>();
let subscriptions = 0;

const jsmOf = async (a: Agent): Promise<JetStreamManager> =>
  (a.jsm ??= await jetstreamManager(a.nc, { checkAPI: false, timeout: 5000 }));

function onMessage(a: Agent): (err: Error | null, msg: Msg) => void {
  return (err, msg) => {
    if (err) return;
    const key = msg.headers?.get(KEY_HEADER) || null;
    rx(a.idx, key, 1);
    if (key === null || init.mode !== 'hierarchical') return;
    a.got.add(key);
    const m = memberships.get(key);
    if (!m || m.target !== a.h.hostId) return;
    if (m.joins) void joinVpc(a, m);
    else unfollow(a, m.vpcId);
  };
}

function follow(a: Agent, vpcId: string): string {
  const subject = subjects.goalStateMulticast(a.h, vpcId);
  if (!a.follows.has(subject)) {
    a.follows.set(subject, a.nc.subscribe(subject, { callback: onMessage(a) }));
    subscriptions += 1;
  }
  return subject;
}

function unfollow(a: Agent, vpcId: string): void {
  const subject = subjects.goalStateMulticast(a.h, vpcId);
  const sub = a.follows.get(subject);
  if (!sub) return;
  sub.unsubscribe();
  a.follows.delete(subject);
  subscriptions -= 1;
}

/**
 * A full state made the host a member of the VPC: it follows the multicast, then
 * checks (as the product's agent does) whether a newer revision is stored on it
 * than its full state's — a multicast that got past the subscription. If so it
 * resyncs: one full state (a delivery with no key) that holds every change it
 * missed, each credited with weight 0.
 */
async function joinVpc(a: Agent, m: Membership): Promise<void> {
  const subject = follow(a, m.vpcId);
  try {
    await a.nc.flush();
    // A multicast routed just before the subscription may still be on its way.
    await sleep(250);
    const jsm = await jsmOf(a);
    const last = await jsm.direct
      .getMessage(streams.goalStates, { last_by_subj: subject })
      .catch(() => null);
    if (!last) return;
    const stored = revisionOf(last.data);
    if (stored <= m.revision) return;
    const missed = (multicastLog.get(subject) ?? []).filter(
      ([revision, key]) => revision > m.revision && revision <= stored && !a.got.has(key),
    );
    if (missed.length === 0) return;
    catchUps += 1;
    rx(a.idx, null, 1);
    for (const [, key] of missed) {
      a.got.add(key);
      rx(a.idx, key, 0);
    }
  } catch {
    // Closed while checking (stopping): nothing to count.
  }
}

/**
 * After a reconnect: one direct get of the last message on the agent's subject
 * (its resync check), asked again until the stream answers (a restarted server's
 * JetStream takes a moment); "no message" is an answer.
 */
async function resync(a: Agent): Promise<void> {
  if (a.resyncLoop) return;
  a.resyncLoop = true;
  let wait = 100;
  try {
    while (a.state === 'resyncing' && !a.nc.isClosed()) {
      try {
        const jsm = await jsmOf(a);
        await jsm.direct.getMessage(streams.goalStates, { last_by_subj: a.checkSubject });
        if (a.state === 'resyncing') {
          a.state = 'up';
          event(RESYNCED, a);
        }
        return;
      } catch {
        await sleep(wait * (0.5 + Math.random()));
        wait = Math.min(wait * 2, 2000);
      }
    }
  } finally {
    a.resyncLoop = false;
  }
}

async function watch(a: Agent): Promise<void> {
  for await (const s of a.nc.status()) {
    if (s.type === 'disconnect') {
      if (a.state === 'up') event(DISCONNECTED, a);
      a.state = 'down';
    } else if (s.type === 'reconnect') {
      a.state = 'resyncing';
      event(RECONNECTED, a);
      void resync(a);
    }
  }
}

async function open(h: HostRecord, idx: number, slot: number): Promise<Agent> {
  const urls = init.urls;
  const first = (init.start + slot) % urls.length;
  const servers = init.pinToNode ? [urls[first]!] : [...urls.slice(first), ...urls.slice(0, first)];
  const tls = urls.every((u) => u.startsWith('tls://'));
  const seedFile = init.hostCredentials
    ? joinPath(init.hostCredentials, `${h.hostId}.nk`)
    : undefined;
  let nc: NatsConnection | undefined;
  for (let attempt = 0; nc === undefined; attempt++) {
    try {
      nc = await connect({
        servers,
        noRandomize: true,
        ignoreClusterUpdates: init.pinToNode === true,
        name: `agent-${h.hostId}`,
        noEcho: true,
        timeout: 20_000,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: init.reconnectWaitMs ?? 250,
        reconnectJitter: init.reconnectJitterMs ?? 500,
        reconnectJitterTLS: init.reconnectJitterMs ?? 500,
        noAsyncTraces: true,
        ...(tls ? { tls: init.caFile ? { caFile: init.caFile } : {} } : {}),
        ...(seedFile
          ? {
              authenticator: nkeySeedAuthenticator(new Uint8Array(readFileSync(seedFile))),
              inboxPrefix: subjects.hostInbox(h.hostId),
            }
          : {}),
      });
    } catch (err) {
      if (attempt >= 5)
        throw new Error(`agent ${h.hostId} cannot connect to ${servers[0]}: ${String(err)}`, {
          cause: err,
        });
      await sleep(200 * 2 ** attempt * (0.5 + Math.random()));
    }
  }
  const held = [...(heldOf.get(h.hostId) ?? [])];
  const a: Agent = {
    h,
    idx,
    nc,
    jsm: undefined,
    follows: new Map(),
    got: new Set(),
    state: 'up',
    resyncLoop: false,
    // A host's own user may read its cluster's multicasts only (infra/nats/auth.ts).
    checkSubject: seedFile
      ? subjects.goalStateMulticast(h, held[0] ?? 'none')
      : subjects.goalStateHost(h, h.hostId),
  };
  void watch(a);
  a.nc.subscribe(subjects.goalStateHost(h, h.hostId), { callback: onMessage(a) });
  subscriptions += 1;
  if (init.mode === 'hierarchical') for (const vpcId of held) follow(a, vpcId);
  return a;
}

let heldOf = new Map<string, Set<string>>();
let rssBeforeConnectMb = NaN;
let heapBeforeConnectMb = NaN;
const heapMb = (): number => {
  const m = process.memoryUsage();
  return (m.heapUsed + m.external) / 2 ** 20;
};
const loopDelay = monitorEventLoopDelay({ resolution: 10 });

/**
 * What this worker's agents need of the workload (their records and VPCs, joins
 * and leaves, the multicast log); the workload itself is let go.
 */
function learn(message: WorkerInit): Array<{ h: HostRecord; idx: number }> {
  const workload = buildWorkload(message.workload);
  const mine = new Set(message.hostIds);
  const indexOf = new Map(workload.hosts.map((h, i) => [h.hostId, i]));
  heldOf = new Map(message.hostIds.map((id) => [id, workload.holds.get(id)!]));
  if (message.mode === 'hierarchical') {
    workload.intents.forEach((list, i) =>
      list.forEach((d, k) => {
        const key = `${i}.${k}`;
        if (d.unicast) {
          if ((d.joins || d.leaves) && mine.has(d.target))
            memberships.set(key, {
              target: d.target,
              vpcId: d.vpcId,
              revision: d.revision,
              joins: d.joins,
            });
        } else {
          const log = multicastLog.get(d.subject) ?? [];
          log.push([d.revision, key]);
          multicastLog.set(d.subject, log);
        }
      }),
    );
  }
  return message.hostIds.map((id) => {
    const i = indexOf.get(id);
    if (i === undefined) throw new Error(`host ${id} is not in the workload`);
    return { h: workload.hosts[i]!, idx: i };
  });
}

async function start(message: WorkerInit): Promise<void> {
  init = message;
  const hosts = learn(message);
  // A clean baseline (the worker runs with --expose-gc): what connections add is measured from it.
  // (Twice: buffers are freed after a collection, by a sweeper of their own.)
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await sleep(50);
  gc?.();
  rssBeforeConnectMb = process.memoryUsage.rss() / 2 ** 20;
  heapBeforeConnectMb = heapMb();
  let next = 0;
  let connected = 0;
  const concurrency = message.connectConcurrency ?? 100;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, hosts.length) }, async () => {
      while (next < hosts.length) {
        const slot = next++;
        const { h, idx } = hosts[slot]!;
        agents[slot] = await open(h, idx, slot);
        connected += 1;
        if (connected % 1000 === 0) send({ t: 'progress', connected, of: hosts.length });
      }
    }),
  );
  for (let i = 0; i < agents.length; i += 500)
    await Promise.all(agents.slice(i, i + 500).map((a) => a.nc.flush()));
  flushBatches();
  loopDelay.reset();
  loopDelay.enable();
  send({ t: 'ready', connections: agents.length, subscriptions });
}

const openConnections = (): number => agents.filter((a) => !a.nc.isClosed()).length;

async function stop(id: number): Promise<void> {
  for (let i = 0; i < agents.length; i += 500)
    await Promise.all(agents.slice(i, i + 500).map((a) => a.nc.close().catch(() => undefined)));
  flushBatches();
  process.send!({ t: 'stopped', id } satisfies FromWorker, () => process.exit(0));
}

process.on('message', (message: ToWorker) => {
  switch (message.t) {
    case 'init':
      start(message).catch((err: unknown) => {
        process.stderr.write(`agentWorker: ${(err as Error).stack ?? String(err)}\n`);
        process.exit(1);
      });
      break;
    case 'usage': {
      if (message.collect) (globalThis as { gc?: () => void }).gc?.();
      const cpu = process.cpuUsage();
      send({
        t: 'usage',
        id: message.id,
        pid: process.pid,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        rssMb: process.memoryUsage.rss() / 2 ** 20,
        eventLoopP99Ms: loopDelay.percentile(99) / 1e6,
        eventLoopMaxMs: loopDelay.max / 1e6,
        rssBeforeConnectMb,
        heapMb: heapMb(),
        heapBeforeConnectMb,
        connections: openConnections(),
      });
      break;
    }
    case 'flush':
      flushBatches();
      send({
        t: 'flushed',
        id: message.id,
        pending: agents.filter((a) => a.state !== 'up').length,
        connections: openConnections(),
      });
      break;
    case 'stop':
      void stop(message.id);
      break;
  }
});
// The parent is gone: so are its agents.
process.on('disconnect', () => process.exit(0));
