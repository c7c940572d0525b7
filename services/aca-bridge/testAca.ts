/**
 * A test Alcor Control Agent (issue 26): a gRPC server of our .proto that takes
 * GoalStateV2 messages on PushGoalStatesStream, applies them to a model (Alcor
 * resource → configuration) and answers each with one GoalStateOperationReply,
 * a status per resource. Like Alcor's ACA it closes each stream after its reply
 * (`longLived` keeps streams open instead), and answers on 0.0.0.0-style
 * addresses given. It lives here rather than in test/support because the demo
 * runs it (the demo runs from dist/, which holds no tests).
 *
 * Failure injection: `refuse` (a status other than SUCCESS for chosen
 * resources: not applied), `delayMs` (slow replies), `dropStreams` (the next
 * streams are cut without a reply), `restart()` (down, model lost, back on the
 * same port). It also checks what the bridge promises: a resource's revision never
 * goes back (counted in `outOfOrder`, answered OUT_OF_ORDER and not applied).
 */
import { fork } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { grpc } from '../../infra/index.js';
import { AcaLink, createLogger, requestGoalStates, serveProvisioner } from '../../infra/index.js';
import {
  ALCOR_STATE_MAPS,
  type AlcorConfigurationBase,
  type AlcorGoalStateOperationReply,
  type AlcorGoalStateV2,
  type AlcorHostRequestReply,
  type AlcorOperationStatus,
  type AlcorOperationStatusEntry,
  type AlcorOperationType,
  type AlcorResourceType,
} from '../../shared/index.js';
import { nca } from '../../actors/index.js';

export interface TestAcaOptions {
  /** `host:port` to listen on (default 127.0.0.1:0, any port). */
  listen?: string;
  /** Keep each stream open for more messages (Alcor's ACA closes it after one reply). */
  longLived?: boolean;
}

/** A resource as the test ACA programmed it. */
export interface ProgrammedResource {
  type: AlcorResourceType;
  id: string;
  config: AlcorConfigurationBase;
}

export interface TestAcaStats {
  /** GoalStateV2 messages answered. */
  messages: number;
  /** Resource states received, and those applied. */
  states: number;
  applied: number;
  refused: number;
  /** Of the messages, those with a FULL configuration in them. */
  fullMessages: number;
  /** States whose revision was below the resource's last (never, from a correct bridge). */
  outOfOrder: number;
  streams: number;
  dropped: number;
  restarts: number;
}

const TYPES = Object.entries(ALCOR_STATE_MAPS) as Array<
  [AlcorResourceType, (typeof ALCOR_STATE_MAPS)[AlcorResourceType]]
>;

export class TestAca {
  /** Programmed resources by `<TYPE>/<id>`. */
  readonly model = new Map<string, ProgrammedResource>();
  /** The revision last applied per resource (deleted ones too). */
  private readonly revisions = new Map<string, number>();
  stats: TestAcaStats = TestAca.emptyStats();
  /** A status other than SUCCESS for a resource: refused, not applied. */
  refuse:
    | ((
        type: AlcorResourceType,
        id: string,
        op: AlcorOperationType,
      ) => AlcorOperationStatus | undefined)
    | undefined;
  /** Each reply waits this long. */
  delayMs = 0;
  /** The next streams to cut without a reply. */
  dropStreams = 0;
  private server: grpc.Server | undefined;
  private port = 0;
  private readonly host: string;

  private constructor(private readonly options: TestAcaOptions) {
    const listen = options.listen ?? '127.0.0.1:0';
    this.host = listen.slice(0, listen.lastIndexOf(':'));
    this.port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  }

  static emptyStats(): TestAcaStats {
    return {
      messages: 0,
      states: 0,
      applied: 0,
      refused: 0,
      fullMessages: 0,
      outOfOrder: 0,
      streams: 0,
      dropped: 0,
      restarts: 0,
    };
  }

  static async start(options: TestAcaOptions = {}): Promise<TestAca> {
    const aca = new TestAca(options);
    await aca.listen();
    // One push to itself: the server's first call costs tens of ms (code paths met
    // once), paid here rather than by the first push it is sent.
    const link = new AcaLink({
      address: aca.address,
      hostId: 'warm-up',
      logger: createLogger({ name: 'test-aca', level: 'silent', pretty: false }),
    });
    await link.push({ format_version: 1 }).finally(() => link.close());
    aca.stats = TestAca.emptyStats();
    return aca;
  }

  /** Where the bridge reaches it. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  private async listen(): Promise<void> {
    const { server, port } = await serveProvisioner(
      {
        PushGoalStatesStream: (
          call: grpc.ServerDuplexStream<AlcorGoalStateV2, AlcorGoalStateOperationReply>,
        ) => this.serve(call),
      },
      `${this.host}:${this.port}`,
    );
    this.server = server;
    this.port = port;
  }

  private serve(
    call: grpc.ServerDuplexStream<AlcorGoalStateV2, AlcorGoalStateOperationReply>,
  ): void {
    this.stats.streams += 1;
    let done = false;
    call.on('data', (message: AlcorGoalStateV2) => {
      if (done) return;
      if (this.dropStreams > 0) {
        this.dropStreams -= 1;
        this.stats.dropped += 1;
        done = true;
        call.destroy(new Error('stream dropped by the test ACA'));
        return;
      }
      if (!this.options.longLived) done = true;
      void this.answer(message).then((reply) => {
        if (call.destroyed || call.cancelled) return;
        call.write(reply);
        if (!this.options.longLived) call.end();
      });
    });
    call.on('end', () => {
      if (!done || this.options.longLived) call.end();
    });
    call.on('error', () => undefined);
  }

  private async answer(message: AlcorGoalStateV2): Promise<AlcorGoalStateOperationReply> {
    const began = performance.now();
    if (this.delayMs > 0) await sleep(this.delayMs);
    const statuses: AlcorOperationStatusEntry[] = [];
    let full = false;
    for (const [type, map] of TYPES) {
      for (const [id, state] of Object.entries(message[map] ?? {})) {
        const t0 = performance.now();
        const op = state.operation_type ?? 'INFO';
        const config = state.configuration ?? {};
        if (config.update_type === 'FULL') full = true;
        const status = this.applyOne(type, id, op, config);
        const us = Math.round((performance.now() - t0) * 1000);
        statuses.push({
          resource_id: id,
          resource_type: type,
          operation_type: op,
          operation_status: status,
          dataplane_programming_time: us,
          network_configuration_time: 0,
          state_elapse_time: us,
        });
      }
    }
    this.stats.messages += 1;
    if (full) this.stats.fullMessages += 1;
    return {
      format_version: 1,
      operation_statuses: statuses,
      message_total_operation_time: Math.round((performance.now() - began) * 1000),
    };
  }

  private applyOne(
    type: AlcorResourceType,
    id: string,
    op: AlcorOperationType,
    config: AlcorConfigurationBase,
  ): AlcorOperationStatus {
    this.stats.states += 1;
    const refused = this.refuse?.(type, id, op);
    if (refused && refused !== 'SUCCESS') {
      this.stats.refused += 1;
      return refused;
    }
    const key = nca.alcorKey(type, id);
    const revision = config.revision_number ?? 0;
    if (revision < (this.revisions.get(key) ?? 0)) {
      this.stats.outOfOrder += 1;
      return 'OUT_OF_ORDER';
    }
    this.revisions.set(key, revision);
    if (op === 'DELETE') this.model.delete(key);
    else if (op === 'CREATE' || op === 'UPDATE') this.model.set(key, { type, id, config });
    this.stats.applied += 1;
    return 'SUCCESS';
  }

  /** Down (connections cut), its model lost, and back on the same port. */
  async restart(downMs = 0): Promise<void> {
    await this.stop();
    this.model.clear();
    this.revisions.clear();
    this.stats.restarts += 1;
    if (downMs > 0) await sleep(downMs);
    await this.listen();
  }

  /** Tells the bridge at `address` that it restarted, as RequestGoalStates (AGENT_RESTARTED). */
  async announceRestart(address: string): Promise<AlcorHostRequestReply> {
    return requestGoalStates(address, {
      format_version: 1,
      state_requests: [{ request_type: 'AGENT_RESTARTED', request_id: `restart-${Date.now()}` }],
    });
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    server?.forceShutdown();
    await Promise.resolve();
  }
}

/**
 * A configuration as compared (canonical text): without the fields a push sets,
 * without defaults, keys sorted.
 */
export function comparable(config: AlcorConfigurationBase): string {
  const { revision_number: _r, request_id: _q, update_type: _u, ...rest } = config;
  return JSON.stringify(stripDefaults(rest), (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}

/** proto3 defaults ('' 0 false null [] {}) left out, recursively (a decoded message has them all). */
function stripDefaults(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(stripDefaults);
    return items.length === 0 ? undefined : items;
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const s = stripDefaults(v);
      if (s !== undefined) out[k] = s;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  }
  if (value === '' || value === 0 || value === false || value === null) return undefined;
  return value;
}

/** What the test ACAs' process answers to `report`, one entry per ACA in the order of its addresses. */
export interface TestAcaReport {
  models: Array<Array<[string, ProgrammedResource]>>;
  stats: TestAcaStats[];
}

/** Test ACAs in a child process (testAcaProcess.ts): their addresses, reports, stop. */
export interface TestAcaProcess {
  addresses: string[];
  report: () => Promise<TestAcaReport>;
  stop: () => Promise<void>;
}

/**
 * Forks `count` test ACAs; `entry` is how node runs testAcaProcess (its .js, or
 * `--import tsx` and its .ts).
 */
export async function forkTestAcas(
  count: number,
  entry: string[],
  options: { longLived?: boolean } = {},
): Promise<TestAcaProcess> {
  const args = [String(count), ...(options.longLived ? ['long-lived'] : [])];
  const child = fork(entry[entry.length - 1]!, args, {
    execArgv: entry.slice(0, -1),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = (type: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const onMessage = (m: Record<string, unknown>) => {
        if (m.type !== type) return;
        child.off('exit', onExit);
        child.off('message', onMessage);
        resolve(m);
      };
      const onExit = (code: number | null) =>
        reject(new Error(`the test ACAs' process exited (${code}) before '${type}'`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  const ready = await next('ready');
  return {
    addresses: ready.addresses as string[],
    report: async () => {
      const answer = next('report');
      child.send({ type: 'report' });
      return (await answer) as unknown as TestAcaReport;
    },
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ type: 'stop' });
      await exited;
    },
  };
}
