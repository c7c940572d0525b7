/**
 * The sync API's one answer channel: the statuses the VPCs' owners publish on
 * `status.<vpc>` (DESIGN §4.3). A request watches the status subjects of its VPCs
 * before its intents are published — one subscription per VPC with requests in
 * flight, shared — so no answer can slip past it; each intent's waiter is released
 * by its own status (`accepted` or `rejected`, then `programmed` or `incomplete`).
 * An intent decided before the request (a re-sent id) has its answers looked up in
 * stream STATUS instead.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { directPage } from '../../../infra/index.js';
import { StatusSchema, decodeJson, streams, subjects, type Status } from '../../../shared/index.js';

export type { ProgrammedAnswer } from '../../../shared/index.js';

/** The request headers of the wait, and what a bad value is answered with. */
export const WAIT_HEADERS = { wait: 'Alcor-Wait', waitMs: 'Alcor-Wait-Ms' } as const;

export type WaitRequest =
  | { ok: true; wait?: { ms: number } }
  | { ok: false; error: { code: string; message: string; path: string } };

/** Reads the wait headers: absent = no wait; `programmed` with an optional bound in ms. */
export function parseWaitHeaders(
  get: (name: string) => string | undefined,
  defaultMs: number,
): WaitRequest {
  const wait = get(WAIT_HEADERS.wait);
  const ms = get(WAIT_HEADERS.waitMs);
  if (wait === undefined || wait === '') {
    if (ms !== undefined && ms !== '') {
      return {
        ok: false,
        error: {
          code: 'bad_header',
          message: `${WAIT_HEADERS.waitMs} needs ${WAIT_HEADERS.wait}: programmed`,
          path: `header.${WAIT_HEADERS.waitMs}`,
        },
      };
    }
    return { ok: true };
  }
  if (wait !== 'programmed') {
    return {
      ok: false,
      error: {
        code: 'bad_header',
        message: `${WAIT_HEADERS.wait} must be "programmed", got ${JSON.stringify(wait.slice(0, 40))}`,
        path: `header.${WAIT_HEADERS.wait}`,
      },
    };
  }
  if (ms === undefined || ms === '') return { ok: true, wait: { ms: defaultMs } };
  const n = Number(ms);
  if (!/^\d+$/.test(ms) || n < 1 || n > 3_600_000) {
    return {
      ok: false,
      error: {
        code: 'bad_header',
        message: `${WAIT_HEADERS.waitMs} must be a whole number of milliseconds from 1 to 3600000, got ${JSON.stringify(ms.slice(0, 40))}`,
        path: `header.${WAIT_HEADERS.waitMs}`,
      },
    };
  }
  return { ok: true, wait: { ms: n } };
}

/** Largest number of STATUS messages read to find a re-sent intent's answer. */
const MAX_SCAN = 100_000;

const isFinal = (s: Status): boolean => s.outcome === 'programmed' || s.outcome === 'incomplete';

/** One request's view: the statuses of its intents as they come. */
export class StatusWatch {
  readonly decided = new Map<string, Status>();
  readonly finals = new Map<string, Status>();
  private wanted: { ids: ReadonlySet<string>; final: boolean; wake: () => void } | undefined;

  constructor(
    readonly intentIds: ReadonlySet<string>,
    private readonly release: () => void,
    private readonly jsm: () => Promise<JetStreamManager>,
  ) {}

  take(s: Status): void {
    if (!this.intentIds.has(s.intentId)) return;
    if (isFinal(s)) this.finals.set(s.intentId, s);
    else this.decided.set(s.intentId, s);
    const w = this.wanted;
    if (w && [...w.ids].every((id) => (w.final ? this.finals : this.decided).has(id))) w.wake();
  }

  /** Waits until every one of `ids` is decided (or has its final status), or `ms` passed. */
  async until(ids: readonly string[], final: boolean, ms: number): Promise<void> {
    const have = final ? this.finals : this.decided;
    const missing = new Set(ids.filter((id) => !have.has(id)));
    if (missing.size === 0 || ms <= 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.wanted = { ids: missing, final, wake: resolve };
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.wanted = undefined;
  }

  /** Looks up statuses already in STATUS (intents decided before this request). */
  async lookUp(items: ReadonlyArray<{ intentId: string; vpcId: string }>): Promise<void> {
    const byVpc = new Map<string, Set<string>>();
    for (const { intentId, vpcId } of items) {
      const set = byVpc.get(vpcId) ?? new Set();
      set.add(intentId);
      byVpc.set(vpcId, set);
    }
    if (byVpc.size === 0) return;
    const jsm = await this.jsm();
    for (const [vpcId, ids] of byVpc) {
      let after = 0;
      for (let read = 0; read < MAX_SCAN && ids.size > 0;) {
        const page = await directPage(jsm, streams.status, subjects.status(vpcId), after, 1000);
        if (page.length === 0) break;
        for (const m of page) {
          const s = readStatus(m.data);
          if (s) this.take(s);
          after = m.seq;
        }
        read += page.length;
        for (const id of [...ids]) if (this.finals.has(id)) ids.delete(id);
      }
    }
  }

  close(): void {
    this.wanted?.wake();
    this.release();
  }
}

function readStatus(data: Uint8Array): Status | undefined {
  const json = decodeJson(data, 64 * 1024);
  if (!json.ok) return undefined;
  const parsed = StatusSchema.safeParse(json.value);
  return parsed.success ? parsed.data : undefined;
}

/** The shared subscriptions: one per VPC with a watch open on it. */
export class StatusRouter {
  private readonly vpcs = new Map<string, { sub: Subscription; watches: Set<StatusWatch> }>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: () => Promise<JetStreamManager>,
  ) {}

  /**
   * Watches the statuses of these intents. The subscriptions are made before this
   * returns, on the connection the intents will be published on: the server has
   * the interest before it has the intents.
   */
  watch(items: ReadonlyArray<{ intentId: string; vpcId: string }>): StatusWatch {
    const vpcIds = [...new Set(items.map((i) => i.vpcId))];
    const watch = new StatusWatch(
      new Set(items.map((i) => i.intentId)),
      () => {
        for (const vpcId of vpcIds) {
          const entry = this.vpcs.get(vpcId);
          if (!entry) continue;
          entry.watches.delete(watch);
          if (entry.watches.size === 0) {
            entry.sub.unsubscribe();
            this.vpcs.delete(vpcId);
          }
        }
      },
      this.jsm,
    );
    for (const vpcId of vpcIds) {
      let entry = this.vpcs.get(vpcId);
      if (!entry) {
        const watches = new Set<StatusWatch>();
        const sub = this.nc.subscribe(subjects.status(vpcId), {
          callback: (_e, m) => {
            const s = readStatus(m.data);
            if (s) for (const w of watches) w.take(s);
          },
        });
        this.vpcs.set(vpcId, (entry = { sub, watches }));
      }
      entry.watches.add(watch);
    }
    return watch;
  }
}
