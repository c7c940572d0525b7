/**
 * The sync API's wait for `programmed` (DESIGN §4.3; request header
 * `Alcor-Wait: programmed`). A watch subscribes to `status.<vpc>` of the batch's
 * VPCs before the intents are published, so no answer can slip past it; an intent
 * that was already decided (a re-sent id) has its answer looked up in stream
 * STATUS instead. Whatever has no answer when the wait ends is `pending`.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { directPage } from '../../infra/index.js';
import { StatusSchema, decodeJson, streams, subjects, type Status } from '../../shared/index.js';

export type ProgrammedAnswer =
  | { outcome: 'programmed' | 'incomplete'; hosts?: Status['hosts']; error?: Status['error'] }
  | { outcome: 'pending'; error: { code: string; message: string } };

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

export class ProgrammedWatch {
  private readonly answers = new Map<string, ProgrammedAnswer>();
  private readonly subs: Subscription[] = [];
  /** Intents still waited for; the wait ends when it is empty. */
  private missing = new Set<string>();
  private wake: (() => void) | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: () => Promise<JetStreamManager>,
  ) {}

  /** Listens to the VPCs' status subjects; resolves once the server has the interest. */
  static async open(
    nc: NatsConnection,
    jsm: () => Promise<JetStreamManager>,
    vpcIds: Iterable<string>,
  ): Promise<ProgrammedWatch> {
    const watch = new ProgrammedWatch(nc, jsm);
    for (const vpcId of new Set(vpcIds)) {
      watch.subs.push(
        nc.subscribe(subjects.status(vpcId), { callback: (_e, m) => watch.take(m.data) }),
      );
    }
    await nc.flush();
    return watch;
  }

  private take(data: Uint8Array): void {
    const json = decodeJson(data, 64 * 1024);
    if (!json.ok) return;
    const parsed = StatusSchema.safeParse(json.value);
    if (!parsed.success) return;
    const s = parsed.data;
    if (s.outcome !== 'programmed' && s.outcome !== 'incomplete') return;
    this.answers.set(s.intentId, {
      outcome: s.outcome,
      ...(s.hosts ? { hosts: s.hosts } : {}),
      ...(s.error ? { error: s.error } : {}),
    });
    if (this.missing.delete(s.intentId) && this.missing.size === 0) this.wake?.();
  }

  /** Looks up answers already in STATUS (intents decided before this request). */
  async lookUp(items: Array<{ intentId: string; vpcId: string }>): Promise<void> {
    const byVpc = new Map<string, Set<string>>();
    for (const { intentId, vpcId } of items) {
      if (this.answers.has(intentId)) continue;
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
          this.take(m.data);
          after = m.seq;
        }
        read += page.length;
        for (const id of [...ids]) if (this.answers.has(id)) ids.delete(id);
      }
    }
  }

  /** Each intent's answer, waiting up to `ms` for those still missing. */
  async answersFor(intentIds: string[], ms: number): Promise<Map<string, ProgrammedAnswer>> {
    this.missing = new Set(intentIds.filter((id) => !this.answers.has(id)));
    if (this.missing.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = setTimeout(resolve, ms);
      });
      clearTimeout(timer);
      this.wake = undefined;
    }
    const out = new Map<string, ProgrammedAnswer>();
    for (const id of intentIds) {
      out.set(
        id,
        this.answers.get(id) ?? {
          outcome: 'pending',
          error: {
            code: 'programmed_timeout',
            message: `not programmed within ${ms} ms; the answer will appear on its status subject`,
          },
        },
      );
    }
    return out;
  }

  close(): void {
    for (const s of this.subs) s.unsubscribe();
    this.subs.length = 0;
    this.wake?.();
  }
}
