/**
 * Bad input thrown at every public surface of a running system, each case judged
 * by what its sender can observe, then the system judged whole: no process
 * crashed, every stored intent decided exactly once as the pure decider says, every
 * refused one answered on status, the steady load beside it untouched, every host
 * converged.
 *
 * Surfaces: `alcor.intents.apply` (the sync API, as a client), `intent.<vpcId>`
 * (JetStream publish, as a client, including subject tokens that are not ids),
 * `gsack.…` (acks, as an NCA host), `alcor.resync.<host>` (as an NCA host),
 * topology files (`alcor topology load`), and goal states (as a broken service).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import {
  NatsCredentials,
  connectNats,
  createHostDirectory,
  createRedisHostMapping,
  readStreamRange,
  type Logger,
} from '../../infra/index.js';
import {
  DEFAULT_BUCKET_COUNT,
  bucketOf,
  isId,
  placeOf,
  readAck,
  streams,
  subjects,
  type HostRecord,
} from '../../shared/index.js';
import { loadTopology } from '../../services/cli/topology.js';
import type { CheckReport } from '../../services/cli/check.js';
import { judge } from '../support/workload.js';
import type { SteadyLoad } from '../fault/load.js';
import { counterByService, type FaultSystem } from '../fault/system.js';
import { judgeRun, oracleUntilClean, type StatusLog } from '../fault/verdict.js';
import { CORPUS, type CorpusCase } from './corpus.js';
import { trailOf, type Trail } from './trail.js';
import {
  baseScript,
  bytes,
  garbage,
  mutateBytes,
  mutateValue,
  pick,
  validIntent,
  type Rnd,
} from './generate.js';

export type Surface = 'apply' | 'intent' | 'ack' | 'resync' | 'topology' | 'goalstate';
export const SURFACES: readonly Surface[] = [
  'apply',
  'intent',
  'ack',
  'resync',
  'topology',
  'goalstate',
];

export interface Tally {
  tried: number;
  /** Answers by error code (or `accepted`, `stored`, …). */
  codes: Record<string, number>;
  /** Cases whose answer broke the contract (no answer, no code, a crash …). */
  violations: string[];
}

export interface FuzzReport {
  seconds: number;
  cases: number;
  bySurface: Record<Surface, Tally>;
  corpus: { cases: number; asExpected: number; otherwise: string[] };
  /** After the fuzz: the checks of the whole system. */
  crashed: string[];
  replay: string | undefined;
  refusedWithoutStatus: number;
  load: {
    acked: number;
    lost: number;
    appliedTwice: number;
    orderBroken: number;
    unfinished: number;
    unfinishedIds: string[];
  };
  counters: Record<string, number>;
  /** Acks the fuzz sent that the controllers must have refused, each once. */
  acksToRefuse: number;
  /**
   * Undecodable goal states the fuzz sent on one host's own subject, which exactly
   * one receiver must refuse: that host's agent (JetStream-bound) or the relays
   * (Kafka-bound, reading GOALSTATES).
   */
  goalStatesToRefuse: { agents: number; relays: number };
  divergentHosts: number;
  silentHosts: number;
  /** The first few differences the oracle found, to start debugging from. */
  divergences: Array<CheckReport['diverged'][number] & { mapping?: string; trail?: Trail }>;
  ok: boolean;
}

const decoder = new TextDecoder();
const SEND_TIMEOUT_MS = 60_000;

/** `alcor topology load` names the code of a refused file last, in parentheses. */
const topologyCode = (message: string): string =>
  /\(([a-z_]+)\)\s*$/.exec(message)?.[1] ?? 'no_code';

/** Every apply reply item must be an outcome, and a refusal must carry a code and a message. */
function applyReplyProblem(reply: unknown, sentItems: number | undefined): string | undefined {
  const bad = (e: unknown): boolean =>
    !e ||
    typeof e !== 'object' ||
    typeof (e as { code?: unknown }).code !== 'string' ||
    typeof (e as { message?: unknown }).message !== 'string' ||
    (e as { message: string }).message.length === 0;
  if (reply && typeof reply === 'object' && 'error' in reply && !('outcome' in reply))
    return bad(reply.error) ? 'top-level error without code/message' : undefined;
  const items = Array.isArray(reply) ? reply : [reply];
  if (sentItems !== undefined && Array.isArray(reply) && items.length !== sentItems)
    return `${items.length} answers for ${sentItems} intents`;
  for (const item of items) {
    const outcome = (item as { outcome?: unknown } | null)?.outcome;
    if (outcome === 'accepted') continue;
    if (outcome !== 'rejected' && outcome !== 'pending')
      return `no outcome in ${JSON.stringify(item).slice(0, 120)}`;
    if (bad((item as { error?: unknown }).error)) return 'a refusal without code/message';
  }
  return undefined;
}

function firstCode(reply: unknown): string {
  const items = Array.isArray(reply) ? reply : [reply];
  const top = (reply as { error?: { code?: string } } | null)?.error?.code;
  if (top && !Array.isArray(reply) && !(reply as { outcome?: string }).outcome) return top;
  const item = items[0] as { outcome?: string; error?: { code?: string } } | undefined;
  return item?.outcome === 'accepted' ? 'accepted' : (item?.error?.code ?? item?.outcome ?? 'none');
}

async function counterSum(system: FaultSystem, name: string): Promise<number> {
  let total = 0;
  for (const value of (await counterByService(system, name)).values()) total += value;
  return total;
}

/** Each divergence with what the Redis mapping says of its VPC (is the host listed?). */
async function withMapping(
  system: FaultSystem,
  diverged: CheckReport['diverged'],
): Promise<FuzzReport['divergences']> {
  const url = system.servers.env().REDIS_URL;
  if (!url || diverged.length === 0) return diverged;
  const mapping = createRedisHostMapping(url);
  try {
    return await Promise.all(
      diverged.map(async (d) => {
        const entry = await mapping.hostsOf(d.vpcId).catch((e: Error) => e);
        const mapped =
          entry instanceof Error
            ? `unreadable (${entry.message})`
            : entry
              ? `revision ${entry.revision}, host ${entry.hosts.includes(d.hostId) ? 'listed' : 'NOT listed'}`
              : 'no entry';
        return { ...d, mapping: mapped };
      }),
    );
  } finally {
    await mapping.close();
  }
}

/** The first divergences followed from GOALSTATES through Kafka to the fleets' offsets. */
async function withTrails(
  system: FaultSystem,
  divergences: FuzzReport['divergences'],
  log: Logger,
): Promise<FuzzReport['divergences']> {
  const out: FuzzReport['divergences'] = [];
  for (const [i, d] of divergences.entries()) {
    if (i >= 3) {
      out.push(d);
      continue;
    }
    const trail = await trailOf(system, d, log).catch((err: Error) => {
      log.warn({ err, hostId: d.hostId }, 'trail not read');
      return undefined;
    });
    out.push(trail ? { ...d, trail } : d);
  }
  return out;
}

const COUNTERS = [
  'alcor_controller_acks_refused_total',
  'alcor_programmed_unmatched_acks_total',
  'alcor_controller_resync_refused_total',
  'alcor_controller_refused_total',
  'alcor_relay_invalid_total',
  'alcor_nca_goal_states_invalid_total',
  // Not judged; read when the oracle is not clean: a relay stuck or restarting.
  'alcor_relay_lag',
  'alcor_relay_restarts_total',
] as const;

export class FuzzCampaign {
  readonly vpcIds: string[];
  private readonly tallies = Object.fromEntries(
    SURFACES.map((s): [Surface, Tally] => [s, { tried: 0, codes: {}, violations: [] }]),
  ) as Record<Surface, Tally>;
  /** Acks sent that their bucket's owner must refuse (judged against its counter). */
  private acksToRefuse = 0;
  /** Goal states sent that their one receiver must refuse (judged against its counter). */
  private readonly goalStatesToRefuse = { agents: 0, relays: 0 };
  /** INTENTS sequences of intents published to a token that is not an id. */
  private readonly refusedSeqs: number[] = [];
  private readonly hostConns = new Map<string, NatsConnection>();
  private host!: HostRecord;
  private n = 0;
  private topologyDir = mkdtempSync(join(tmpdir(), 'alcor-fuzz-topology-'));

  constructor(
    private readonly system: FaultSystem,
    private readonly rnd: Rnd,
    private readonly log: Logger,
    vpcs = 6,
  ) {
    this.vpcIds = Array.from({ length: vpcs }, (_, i) => `fz-${i}`);
  }

  private note(surface: Surface, code: string, problem?: string): void {
    const t = this.tallies[surface];
    t.tried += 1;
    t.codes[code] = (t.codes[code] ?? 0) + 1;
    if (problem && t.violations.length < 20) t.violations.push(problem);
    else if (problem) t.violations.push('…');
  }

  /** The fuzzed VPCs, created whole through the sync API; one host's own NATS user. */
  async setUp(): Promise<void> {
    const { client, hosts } = this.system;
    for (const vpcId of this.vpcIds) {
      const reply = await client.request(
        subjects.applyIntents,
        bytes(JSON.stringify(baseScript(vpcId, hosts))),
        { timeout: SEND_TIMEOUT_MS },
      );
      const items = reply.json<Array<{ outcome: string }>>();
      if (!items.every((i) => i.outcome === 'accepted'))
        throw new Error(`${vpcId} not set up: ${JSON.stringify(items).slice(0, 300)}`);
    }
    this.host = hosts[0]!;
  }

  private async hostConnection(hostId: string): Promise<NatsConnection> {
    let nc = this.hostConns.get(hostId);
    if (!nc) {
      const credentials = new NatsCredentials(this.system.servers.env().ALCOR_NATS_CREDENTIALS!);
      nc = await connectNats(this.system.servers.env().NATS_URL!, {
        name: `fuzz-${hostId}`,
        nkeySeedFile: credentials.hostSeedFile(hostId),
        inboxPrefix: subjects.hostInbox(hostId),
      });
      this.hostConns.set(hostId, nc);
    }
    return nc;
  }

  /** An intent body: valid, mutated, byte-damaged or garbage. */
  private intentBody(vpcId: string): Uint8Array {
    const valid = validIntent(this.rnd, vpcId, this.system.hosts, ++this.n);
    const r = this.rnd();
    if (r < 0.15) return bytes(JSON.stringify(valid));
    if (r < 0.7)
      return bytes(JSON.stringify(mutateValue(this.rnd, valid, { vpcIds: this.vpcIds })));
    if (r < 0.9) return mutateBytes(this.rnd, JSON.stringify(valid));
    return garbage(this.rnd);
  }

  async apply(body: Uint8Array, hdrs?: Record<string, string>, items?: number): Promise<unknown> {
    const h = headers();
    for (const [k, v] of Object.entries(hdrs ?? {})) h.set(k, v);
    let reply: unknown;
    try {
      const msg = await this.system.client.request(subjects.applyIntents, body, {
        timeout: SEND_TIMEOUT_MS,
        ...(hdrs ? { headers: h } : {}),
      });
      reply = JSON.parse(decoder.decode(msg.data));
    } catch (err) {
      const message = (err as Error).message;
      // Refused before it left: the client's own limit (over the server's max_payload).
      if (/MAX_PAYLOAD|max_payload|payload/i.test(message)) {
        this.note('apply', 'refused_by_client');
        return { error: { code: 'refused_by_client', message } };
      }
      this.note(
        'apply',
        'no_answer',
        `no answer (${message}) to ${decoder.decode(body.slice(0, 80))}`,
      );
      return undefined;
    }
    this.note('apply', firstCode(reply), applyReplyProblem(reply, items));
    return reply;
  }

  private async fuzzApply(): Promise<void> {
    const r = this.rnd();
    const vpcId = pick(this.rnd, this.vpcIds);
    if (r < 0.7) {
      await this.apply(this.intentBody(vpcId));
      return;
    }
    // A batch of mixed good and bad intents (as values, so the array itself is sound).
    const size = pick(this.rnd, [2, 5, 20, 200]);
    const batch = Array.from({ length: size }, () => {
      const v = validIntent(this.rnd, pick(this.rnd, this.vpcIds), this.system.hosts, ++this.n);
      return this.rnd() < 0.5 ? v : mutateValue(this.rnd, v, { vpcIds: this.vpcIds });
    });
    await this.apply(bytes(JSON.stringify(batch)), undefined, size);
  }

  private async fuzzIntent(): Promise<void> {
    const js = jetstream(this.system.client, { timeout: 10_000 });
    const validToken = this.rnd() < 0.85;
    const token = validToken
      ? pick(this.rnd, this.vpcIds)
      : pick(this.rnd, ['é', 'a'.repeat(65), '$x', 'a%b', '-', 'fz-0-' + 'x'.repeat(70)]);
    try {
      const ack = await js.publish(
        `intent.${token}`,
        this.intentBody(validToken ? token : 'fz-0'),
        {
          msgID: `fuzz-${Date.now()}-${++this.n}`,
        },
      );
      if (!isId(token)) this.refusedSeqs.push(ack.seq);
      this.note('intent', 'stored');
    } catch (err) {
      const message = (err as Error).message;
      if (/MAX_PAYLOAD|payload/i.test(message)) this.note('intent', 'refused_by_client');
      else this.note('intent', 'not_stored', `intent.${token}: ${message}`);
    }
  }

  private async fuzzAck(): Promise<void> {
    const nc = await this.hostConnection(this.host.hostId);
    const vpcId = pick(this.rnd, [...this.vpcIds, 'fz-nowhere']);
    const bucket = this.rnd() < 0.8 ? bucketOf(vpcId) : Math.floor(this.rnd() * 100_000);
    const valid = {
      hostId: this.host.hostId,
      vpcId,
      revision: pick(this.rnd, [1, 10 ** 9, 3]),
      status: pick(this.rnd, ['applied', 'failed']),
    };
    const body =
      this.rnd() < 0.6
        ? bytes(JSON.stringify(mutateValue(this.rnd, valid, { vpcIds: this.vpcIds })))
        : this.rnd() < 0.5
          ? bytes(JSON.stringify(valid))
          : garbage(this.rnd);
    const subject = `gsack.${bucket}.${isId(vpcId) ? vpcId : 'x'}.${this.host.hostId}`;
    nc.publish(subject, body);
    this.note('ack', 'sent');
    // What its receiver must make of it: a bucket's owner reads every ack of its
    // bucket, and refuses exactly those the contract's reader refuses (counted by
    // alcor_controller_acks_refused_total); an ack of no bucket reaches nobody.
    if (bucket < DEFAULT_BUCKET_COUNT && !readAck(subject, body, DEFAULT_BUCKET_COUNT).ok)
      this.acksToRefuse += 1;
  }

  private async fuzzResync(): Promise<void> {
    const nc = await this.hostConnection(this.host.hostId);
    const valid = {
      hostId: this.host.hostId,
      vpcIds: [pick(this.rnd, this.vpcIds)],
      ...(this.rnd() < 0.5 ? { buckets: pick(this.rnd, ['0-1023', '7', '0-3,512-515']) } : {}),
    };
    const r = this.rnd();
    const body =
      r < 0.2
        ? bytes(JSON.stringify(valid))
        : r < 0.7
          ? bytes(JSON.stringify(mutateValue(this.rnd, valid, { vpcIds: this.vpcIds })))
          : r < 0.8
            ? bytes(
                JSON.stringify({
                  hostId: this.host.hostId,
                  vpcIds: Array.from({ length: 1001 }, (_, i) => `v${i}`),
                }),
              )
            : garbage(this.rnd);
    try {
      const msg = await nc.request(subjects.resync(this.host.hostId), body, { timeout: 10_000 });
      const reply = JSON.parse(decoder.decode(msg.data)) as {
        error?: { code?: string; message?: string };
        hostId?: string;
        vpcs?: unknown;
      };
      if (reply.error) {
        this.note(
          'resync',
          reply.error.code ?? 'none',
          typeof reply.error.code === 'string' && reply.error.message
            ? undefined
            : 'an error without code/message',
        );
      } else {
        this.note(
          'resync',
          'answered',
          reply.hostId === this.host.hostId && Array.isArray(reply.vpcs)
            ? undefined
            : `odd reply ${JSON.stringify(reply).slice(0, 120)}`,
        );
      }
    } catch (err) {
      this.note('resync', 'no_answer', `no answer: ${(err as Error).message}`);
    }
  }

  /** Topology cases one at a time: each compares the registry before and after itself. */
  private topologyTurn: Promise<void> = Promise.resolve();

  private fuzzTopology(): Promise<void> {
    const turn = this.topologyTurn.then(() => this.topologyCase());
    this.topologyTurn = turn.catch(() => undefined);
    return turn;
  }

  private async topologyCase(): Promise<void> {
    const { nc, hosts } = this.system;
    // Hosts of its own (no agent, no port): a file that loads changes nothing else.
    const valid = {
      hosts: [1, 2, 3].map((i) => ({
        hostId: `fzt-${i}`,
        region: 'r1',
        az: 'az0',
        dc: 'dc0',
        cluster: 'c0',
        underlayIp: `192.0.2.${i}`,
        binding: { type: 'jetstream' },
      })),
    };
    const file = join(this.topologyDir, `t${++this.n}.${pick(this.rnd, ['json', 'yaml'])}`);
    const r = this.rnd();
    writeFileSync(
      file,
      r < 0.75
        ? JSON.stringify(mutateValue(this.rnd, valid, { vpcIds: this.vpcIds }))
        : r < 0.9
          ? mutateBytes(this.rnd, JSON.stringify(valid))
          : garbage(this.rnd),
    );
    const before = await this.hostsDigest(nc);
    try {
      await loadTopology(nc, file, { prune: false });
      // Taken: it must have been a sound file after all; put the registry back.
      this.note('topology', 'loaded');
      writeFileSync(file, JSON.stringify({ hosts }));
      await loadTopology(nc, file, { prune: true });
    } catch (err) {
      const message = (err as Error).message;
      const after = await this.hostsDigest(nc);
      const code = topologyCode(message);
      this.note(
        'topology',
        code,
        message.length === 0
          ? 'an error without a message'
          : after !== before
            ? `a refused file changed the registry: ${message.slice(0, 120)}`
            : undefined,
      );
    }
  }

  private async hostsDigest(nc: NatsConnection): Promise<string> {
    const directory = await createHostDirectory(nc);
    try {
      return JSON.stringify(directory.all().sort((a, b) => a.hostId.localeCompare(b.hostId)));
    } finally {
      await directory.stop();
    }
  }

  private fuzzGoalState(): void {
    const host = pick(this.rnd, this.system.hosts);
    const vpcId = pick(this.rnd, this.vpcIds);
    const valid = {
      vpcId,
      bucket: bucketOf(vpcId),
      revision: 1,
      mode: 'delta',
      target: host.hostId,
      ops: [],
    };
    const mutated = this.rnd() < 0.6;
    const body = mutated
      ? bytes(JSON.stringify(mutateValue(this.rnd, valid, { vpcIds: this.vpcIds })))
      : garbage(this.rnd);
    const toHost = this.rnd() < 0.5;
    const subject = toHost
      ? subjects.goalStateHost(placeOf(host), host.hostId)
      : subjects.goalStateMulticast(placeOf(host), vpcId);
    // A mutated one may still decode, and a multicast reaches as many receivers as
    // hold its VPC: only garbage on one host's subject has a count known here.
    if (!mutated && toHost) {
      if (host.binding.type === 'jetstream') this.goalStatesToRefuse.agents += 1;
      else this.goalStatesToRefuse.relays += 1;
    }
    // A broken service: it can write goal states (clients and hosts cannot, DESIGN §9).
    this.system.nc.publish(subject, body);
    this.note('goalstate', 'sent');
  }

  async one(surface: Surface): Promise<void> {
    switch (surface) {
      case 'apply':
        return this.fuzzApply();
      case 'intent':
        return this.fuzzIntent();
      case 'ack':
        return this.fuzzAck();
      case 'resync':
        return this.fuzzResync();
      case 'topology':
        return this.fuzzTopology();
      case 'goalstate':
        return this.fuzzGoalState();
    }
  }

  /** The corpus: each case sent, its first answer's code compared with the expected one. */
  async corpus(): Promise<FuzzReport['corpus']> {
    const otherwise: string[] = [];
    for (const c of CORPUS) {
      const got = await this.corpusCase(c);
      if (got !== c.expect) otherwise.push(`${c.name}: expected ${c.expect}, got ${got}`);
    }
    return { cases: CORPUS.length, asExpected: CORPUS.length - otherwise.length, otherwise };
  }

  private async corpusCase(c: CorpusCase): Promise<string> {
    const body = typeof c.body === 'string' ? bytes(c.body) : c.body;
    switch (c.surface) {
      case 'apply':
        return firstCode(await this.apply(body, c.headers, c.items));
      case 'resync': {
        const nc = await this.hostConnection(this.host.hostId);
        const msg = await nc.request(subjects.resync(this.host.hostId), body, { timeout: 10_000 });
        const reply = msg.json<{ error?: { code: string } }>();
        this.note('resync', reply.error?.code ?? 'answered');
        return reply.error?.code ?? 'answered';
      }
      case 'topology': {
        const file = join(this.topologyDir, `corpus${++this.n}.${c.ext ?? 'yaml'}`);
        writeFileSync(file, body);
        try {
          await loadTopology(this.system.nc, file, { prune: false });
          this.note('topology', 'loaded');
          writeFileSync(file, JSON.stringify({ hosts: this.system.hosts }));
          await loadTopology(this.system.nc, file, { prune: true });
          return 'loaded';
        } catch (err) {
          const code = topologyCode((err as Error).message);
          this.note('topology', code);
          return code;
        }
      }
    }
  }

  /** Runs cases on `workers` lanes for `seconds`, surfaces weighted like real traffic. */
  async fuzz(seconds: number, workers = 4): Promise<number> {
    const until = Date.now() + seconds * 1000;
    const weights: Array<[Surface, number]> = [
      ['apply', 0.3],
      ['intent', 0.3],
      ['ack', 0.12],
      ['resync', 0.12],
      ['topology', 0.06],
      ['goalstate', 0.1],
    ];
    const choose = (): Surface => {
      let x = this.rnd();
      for (const [s, w] of weights) if ((x -= w) < 0) return s;
      return 'apply';
    };
    let cases = 0;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (Date.now() < until) {
          const surface = choose();
          try {
            await this.one(surface);
          } catch (err) {
            this.note(surface, 'harness_error', `harness: ${(err as Error).message}`);
          }
          cases += 1;
        }
      }),
    );
    return cases;
  }

  /** The whole system after the fuzz (the load stopped): see the file's comment. */
  async verdict(input: {
    load: SteadyLoad;
    statuses: StatusLog;
    loadFrom: number;
    seconds: number;
    cases: number;
    corpus: FuzzReport['corpus'];
    countersBefore: Record<string, number>;
  }): Promise<FuzzReport> {
    const { system } = this;
    for (const nc of this.hostConns.values()) await nc.close().catch(() => undefined);
    const crashed = system.services.filter((s) => !s.running()).map((s) => s.name);
    let replay: string | undefined;
    try {
      await judge(system.nc, this.vpcIds, system.hosts);
    } catch (err) {
      replay = (err as Error).message.slice(0, 1000);
    }
    // Every intent on a token that is not an id is answered on status (refused-<seq>).
    const refusedIds = new Set<string>();
    for await (const m of readStreamRange(system.nc, streams.status, {
      filter: subjects.statusInvalid,
    })) {
      const seq = /:refused-(\d+)$/.exec(m.msgId ?? '')?.[1];
      if (seq) refusedIds.add(seq);
    }
    const refusedWithoutStatus = this.refusedSeqs.filter((s) => !refusedIds.has(String(s))).length;
    const acked = [...input.load.acked.values()].slice(input.loadFrom);
    const oracle = await oracleUntilClean(system.nc, 60_000);
    const run = await judgeRun({
      nc: system.nc,
      hosts: system.hosts,
      statuses: input.statuses,
      acked,
      order: input.load.order,
      onsetAt: Date.now(),
      healedAt: Date.now(),
      oracle,
    });
    const counters: Record<string, number> = {};
    for (const name of COUNTERS)
      counters[name] = (await counterSum(system, name)) - (input.countersBefore[name] ?? 0);
    const violations = SURFACES.reduce((n, s) => n + this.tallies[s].violations.length, 0);
    const report: FuzzReport = {
      seconds: input.seconds,
      cases: input.cases,
      bySurface: this.tallies,
      corpus: input.corpus,
      crashed,
      replay,
      refusedWithoutStatus,
      load: {
        acked: run.acked,
        lost: run.lost,
        appliedTwice: run.appliedTwice,
        orderBroken: run.orderBroken,
        unfinished: run.unfinished,
        unfinishedIds: run.unfinishedIds,
      },
      counters,
      acksToRefuse: this.acksToRefuse,
      goalStatesToRefuse: { ...this.goalStatesToRefuse },
      divergentHosts: run.divergentHosts,
      silentHosts: run.silentHosts,
      divergences: await withTrails(
        system,
        await withMapping(system, oracle.diverged.slice(0, 5)),
        this.log,
      ),
      ok: false,
    };
    report.ok =
      violations === 0 &&
      crashed.length === 0 &&
      replay === undefined &&
      refusedWithoutStatus === 0 &&
      input.corpus.otherwise.length === 0 &&
      run.acked > 0 &&
      run.lost + run.appliedTwice + run.orderBroken + run.unfinished === 0 &&
      run.divergentHosts + run.silentHosts === 0;
    this.log.info({ ok: report.ok }, 'fuzz judged');
    return report;
  }

  async counters(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const name of COUNTERS) out[name] = await counterSum(this.system, name);
    return out;
  }
}

/** The checks of a fuzz run as one value (see {@link FUZZ_CLEAN}). */
export function fuzzJudged(r: FuzzReport) {
  const c = (name: (typeof COUNTERS)[number]): number => r.counters[name] ?? 0;
  return {
    violations: SURFACES.flatMap((s) => r.bySurface[s].violations.map((v) => `${s}: ${v}`)),
    crashed: r.crashed,
    replay: r.replay ?? 'same',
    refusedWithoutStatus: r.refusedWithoutStatus,
    loadUntouched:
      r.load.acked > 0 &&
      r.load.lost + r.load.appliedTwice + r.load.orderBroken + r.load.unfinished === 0,
    // Every bad ack reached its bucket's owner and was refused there, once: the
    // controllers' count is exactly what the fuzz sent (the steady load's acks are
    // sound).
    badAcksRefusedExactly:
      r.acksToRefuse > 0 && c('alcor_controller_acks_refused_total') === r.acksToRefuse,
    // Bad goal states were refused and counted by their receivers: at least those
    // with one known receiver (more come from multicasts and mutated ones).
    badGoalStatesCounted:
      c('alcor_relay_invalid_total') + c('alcor_nca_goal_states_invalid_total') > 0 &&
      c('alcor_nca_goal_states_invalid_total') >= r.goalStatesToRefuse.agents &&
      c('alcor_relay_invalid_total') >= r.goalStatesToRefuse.relays,
    divergentHosts: r.divergentHosts,
    silentHosts: r.silentHosts,
  };
}

export const FUZZ_CLEAN: ReturnType<typeof fuzzJudged> = {
  violations: [],
  crashed: [],
  replay: 'same',
  refusedWithoutStatus: 0,
  loadUntouched: true,
  badAcksRefusedExactly: true,
  badGoalStatesCounted: true,
  divergentHosts: 0,
  silentHosts: 0,
};

/** Lines for a terminal. */
export function describeFuzz(r: FuzzReport): string[] {
  const top = (codes: Record<string, number>): string =>
    Object.entries(codes)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
  return [
    `${r.cases} cases in ${r.seconds} s; ${r.crashed.length ? `CRASHED: ${r.crashed.join(', ')}` : 'no process down'}`,
    ...SURFACES.map(
      (s) =>
        `${s}: ${r.bySurface[s].tried} tried — ${top(r.bySurface[s].codes)}${r.bySurface[s].violations.length ? ` — VIOLATIONS: ${r.bySurface[s].violations.slice(0, 3).join(' | ')}` : ''}`,
    ),
    `log vs pure replay: ${r.replay ?? 'same'}; refused without a status: ${r.refusedWithoutStatus}`,
    `steady load beside it: ${r.load.acked} acked, lost ${r.load.lost}, twice ${r.load.appliedTwice}, order broken ${r.load.orderBroken}, unfinished ${r.load.unfinished}${r.load.unfinishedIds.length ? ` (${r.load.unfinishedIds.join(',')})` : ''}`,
    `counted by the services: ${Object.entries(r.counters)
      .map(([k, v]) => `${k.replace(/^alcor_|_total$/g, '')} ${v}`)
      .join(
        ', ',
      )}; bad acks sent ${r.acksToRefuse}; undecodable goal states sent to one host's subject: ${r.goalStatesToRefuse.agents} JetStream-bound, ${r.goalStatesToRefuse.relays} Kafka-bound`,
    `oracle: ${r.divergentHosts} divergent, ${r.silentHosts} silent`,
    ...r.divergences.map(
      (d) =>
        `  ${d.hostId} (${d.binding}) in ${d.vpcId}: missing ${d.missing.slice(0, 4).join(',') || '-'}; extra ${d.extra.slice(0, 4).join(',') || '-'}; different ${
          d.different
            .slice(0, 4)
            .map((x) => `${x.key} ${x.actualRev}≠${x.expectedRev}`)
            .join(',') || '-'
        }${d.mapping ? `; mapping: ${d.mapping}` : ''}`,
    ),
  ];
}
