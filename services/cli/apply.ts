/**
 * `alcor apply -f <file|->`: intents from a JSON or YAML document — one intent, a
 * list, or `{intents: [...]}` — sent through the sync API (`alcor.intents.apply`)
 * in batches of up to 1,000, in file order, so a VPC's intents are decided in the
 * order written. `--wait programmed` also waits until every affected host applied
 * each accepted intent (header `Alcor-Wait: programmed`). The controllers check
 * each intent; the CLI only checks the document's shape.
 */
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { payloadRoom } from '../../infra/index.js';
import { LIMITS, subjects, type ErrorDetail } from '../../shared/index.js';
import type { ApplyReply, ApplyReplyItem } from '../controller/index.js';
import { readDocument } from './documents.js';
import { CliError, EXIT, table } from './output.js';

/** Largest intents file read. */
const MAX_FILE_BYTES = 256 * 1024 * 1024;
/** What the server may take to decide a batch (its ALCOR_DECISION_TIMEOUT_MS default) plus slack. */
const DECISION_MS = 40_000;

export type WaitFor = 'decided' | 'programmed';

export interface ApplyOptions {
  wait: WaitFor;
  /** For `programmed`: how long to wait after the decisions (the server's default if unset). */
  waitMs?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ApplyReport {
  file: string;
  intents: number;
  accepted: number;
  rejected: number;
  /** Stored but not decided in time (the decision will still come). */
  pending: number;
  /** Sent before with the same id (re-applied): answered again, nothing new recorded. */
  unchanged: number;
  /** Why intents were rejected: error code → count. */
  rejectedBy: Record<string, number>;
  /** With `--wait programmed`: accepted intents by their programmed answer. */
  programmed?: { programmed: number; incomplete: number; pending: number };
  items: ApplyReplyItem[];
}

/** The intents of a document: one object, a list, or `{intents: [...]}`. */
export function intentsOf(file: string, doc: unknown): unknown[] {
  if (Array.isArray(doc)) return doc;
  if (doc && typeof doc === 'object') {
    const intents = (doc as { intents?: unknown }).intents;
    if (intents !== undefined) {
      if (Array.isArray(intents)) return intents;
      throw new CliError(`${file}: intents: must be a list (invalid_type)`, EXIT.usage);
    }
    return [doc];
  }
  throw new CliError(
    `${file}: must hold an intent, a list of intents, or {intents: [...]} (invalid_type)`,
    EXIT.usage,
  );
}

/** What one intent's answer may take (id, VPC, outcome, revision, an error or programmed hosts). */
const ANSWER_BYTES = 512;

/**
 * The intents cut into batches the server takes, each with its first index: at most
 * LIMITS.batchSize intents, a request under the server's max_payload, and few
 * enough that their answers fit in one reply too.
 */
function batchesFor(nc: NatsConnection, intents: readonly unknown[]): Array<[number, unknown[]]> {
  const room = Math.min(LIMITS.batchBytes, payloadRoom(nc));
  const most = Math.max(1, Math.min(LIMITS.batchSize, Math.floor(room / ANSWER_BYTES)));
  const out: Array<[number, unknown[]]> = [];
  let batch: unknown[] = [];
  let first = 0;
  let bytes = 2;
  intents.forEach((intent, i) => {
    const size = Buffer.byteLength(JSON.stringify(intent)) + 1;
    if (batch.length > 0 && (batch.length >= most || bytes + size > room)) {
      out.push([first, batch]);
      batch = [];
      first = i;
      bytes = 2;
    }
    batch.push(intent);
    bytes += size;
  });
  if (batch.length > 0) out.push([first, batch]);
  return out;
}

export async function applyFile(
  nc: NatsConnection,
  file: string,
  options: ApplyOptions,
): Promise<ApplyReport> {
  const intents = intentsOf(file, await readDocument(file, MAX_FILE_BYTES));
  if (intents.length === 0) throw new CliError(`${file}: holds no intents`, EXIT.usage);
  const h = headers();
  if (options.wait === 'programmed') {
    h.set('Alcor-Wait', 'programmed');
    if (options.waitMs !== undefined) h.set('Alcor-Wait-Ms', String(options.waitMs));
  }
  const timeout =
    DECISION_MS + (options.wait === 'programmed' ? (options.waitMs ?? 35_000) + 5_000 : 0);
  const items: ApplyReplyItem[] = [];
  for (const [at, batch] of batchesFor(nc, intents)) {
    let reply: ApplyReply;
    try {
      const msg = await nc.request(
        subjects.applyIntents,
        new TextEncoder().encode(JSON.stringify(batch)),
        { timeout, headers: h },
      );
      reply = msg.json<ApplyReply>();
    } catch (err) {
      const what = (err as Error).message;
      throw new CliError(
        /no responders/i.test(what)
          ? 'no controller is serving alcor.intents.apply: start one (README), then apply again (re-sent ids are safe)'
          : `intents ${at + 1}–${at + batch.length}: ${what}; ${items.length} were answered before (re-sent ids are safe)`,
      );
    }
    if (!Array.isArray(reply)) {
      const error = (reply as { error?: ErrorDetail }).error;
      throw new CliError(
        `intents ${at + 1}–${at + batch.length} refused: ${error?.message ?? JSON.stringify(reply)} (${error?.code ?? 'unknown'})`,
      );
    }
    items.push(...reply);
    options.onProgress?.(items.length, intents.length);
  }
  return summarize(file, items, options.wait);
}

function summarize(file: string, items: ApplyReplyItem[], wait: WaitFor): ApplyReport {
  const report: ApplyReport = {
    file,
    intents: items.length,
    accepted: 0,
    rejected: 0,
    pending: 0,
    unchanged: 0,
    rejectedBy: {},
    ...(wait === 'programmed' ? { programmed: { programmed: 0, incomplete: 0, pending: 0 } } : {}),
    items,
  };
  for (const item of items) {
    report[item.outcome] += 1;
    if (item.outcome !== 'pending' && item.unchanged) report.unchanged += 1;
    if (item.outcome === 'rejected')
      report.rejectedBy[item.error.code] = (report.rejectedBy[item.error.code] ?? 0) + 1;
    if (item.outcome === 'accepted' && report.programmed)
      report.programmed[item.programmed?.outcome ?? 'pending'] += 1;
  }
  return report;
}

/** Everything went through: all accepted (and programmed, when waited for). */
export function applySucceeded(report: ApplyReport): boolean {
  return (
    report.accepted === report.intents &&
    (!report.programmed || report.programmed.programmed === report.accepted)
  );
}

/** At most this many refused or unfinished intents are listed (all are in --json). */
const LISTED = 20;

export function renderApply(report: ApplyReport): string {
  const lines = [
    `${report.file}: ${report.intents} intents — ${report.accepted} accepted, ${report.rejected} rejected, ${report.pending} pending${
      report.unchanged > 0
        ? `; ${report.unchanged === report.intents ? 'all' : report.unchanged} unchanged (sent before with the same id: answered again, nothing new recorded)`
        : ''
    }`,
  ];
  if (report.programmed) {
    const p = report.programmed;
    lines.push(
      `programmed: ${p.programmed}, incomplete: ${p.incomplete}, still pending: ${p.pending}`,
    );
  }
  const codes = Object.entries(report.rejectedBy).sort((a, b) => b[1] - a[1]);
  if (codes.length > 0) lines.push('', table(['rejected by', 'intents'], codes));
  const unfinished = report.items.filter(
    (i) =>
      i.outcome !== 'accepted' ||
      (report.programmed !== undefined && i.programmed?.outcome !== 'programmed'),
  );
  if (unfinished.length > 0) {
    lines.push(
      '',
      table(
        ['intent', 'vpc', 'outcome', 'code', 'field', 'message'],
        unfinished.slice(0, LISTED).map((i) => {
          const detail =
            i.outcome === 'accepted'
              ? (i.programmed?.error ?? {
                  code: '',
                  message: hostsLine(i.programmed),
                })
              : i.error;
          const outcome =
            i.outcome === 'accepted' ? (i.programmed?.outcome ?? 'pending') : i.outcome;
          return [
            i.id ?? '',
            i.vpcId ?? '',
            outcome,
            detail.code,
            detail.path ?? '',
            detail.message,
          ];
        }),
      ),
    );
    if (unfinished.length > LISTED)
      lines.push(`… and ${unfinished.length - LISTED} more (--json lists them all)`);
  }
  return lines.join('\n');
}

function hostsLine(answer: Extract<ApplyReplyItem, { outcome: 'accepted' }>['programmed']): string {
  if (!answer || answer.outcome === 'pending') return '';
  const h = answer.hosts;
  if (!h) return '';
  const named = [
    ...(h.failedHosts?.length ? [`failed: ${h.failedHosts.join(', ')}`] : []),
    ...(h.missing?.length ? [`missing: ${h.missing.join(', ')}`] : []),
  ];
  return `${h.applied}/${h.total} hosts applied${named.length ? `; ${named.join('; ')}` : ''}`;
}
