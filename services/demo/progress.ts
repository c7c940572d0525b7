/**
 * The demo's live counts and its progress line, with no I/O: statuses in, counts
 * out, and the line fitted to a terminal's width.
 *
 * Every count is a set of the demo's own intent ids, so none can pass its total:
 * a status repeated (a retry, a bucket's new owner sending it again — subscribers
 * see every publish, even those the stream drops by msgID), a `programmed` after
 * an `incomplete` for the same intent, or a final status arriving before its
 * intent's `accepted` each count the intent once. A final status implies the
 * intent was accepted, so `programmed ⊆ accepted ⊆ intents` always holds.
 */

export type StatusOutcome = 'accepted' | 'rejected' | 'programmed' | 'incomplete';

export interface StatusSeen {
  intentId: string;
  outcome: StatusOutcome;
  error?: { code: string };
}

/** What one status changed: the intent newly decided, newly programmed. */
export interface Recorded {
  decided: boolean;
  programmed: boolean;
}

const NOTHING: Recorded = { decided: false, programmed: false };

export class IntentTally {
  readonly total: number;
  private readonly ids: ReadonlySet<string>;
  private readonly acceptedIds = new Set<string>();
  /** Intent id → the code it was refused with. */
  private readonly rejectedIds = new Map<string, string>();
  private readonly programmedIds = new Set<string>();
  /** Ended `incomplete` and not programmed since. */
  private readonly incompleteIds = new Set<string>();
  /** Statuses that told nothing new (repeats, or a final status contradicting a refusal). */
  repeats = 0;
  /** Final statuses that arrived before their intent's decision. */
  finalBeforeDecision = 0;

  constructor(intentIds: Iterable<string>) {
    this.ids = new Set(intentIds);
    this.total = this.ids.size;
  }

  get decided(): number {
    return this.acceptedIds.size + this.rejectedIds.size;
  }
  get accepted(): number {
    return this.acceptedIds.size;
  }
  get programmed(): number {
    return this.programmedIds.size;
  }
  get incomplete(): number {
    return this.incompleteIds.size;
  }

  isDecided(intentId: string): boolean {
    return this.acceptedIds.has(intentId) || this.rejectedIds.has(intentId);
  }

  /** Refusals by code. */
  rejectedBy(): Record<string, number> {
    const by: Record<string, number> = {};
    for (const code of this.rejectedIds.values()) by[code] = (by[code] ?? 0) + 1;
    return by;
  }

  /** `programmed`, `incomplete`, `accepted`, `rejected:<code>`, or undefined (nothing yet). */
  outcomeOf(intentId: string): string | undefined {
    if (this.programmedIds.has(intentId)) return 'programmed';
    if (this.incompleteIds.has(intentId)) return 'incomplete';
    if (this.acceptedIds.has(intentId)) return 'accepted';
    const code = this.rejectedIds.get(intentId);
    return code === undefined ? undefined : `rejected:${code}`;
  }

  /** One status from STATUS; those of intents not the demo's are ignored. */
  record(s: StatusSeen): Recorded {
    const id = s.intentId;
    if (!this.ids.has(id)) return NOTHING;
    if (s.outcome === 'accepted' || s.outcome === 'rejected') {
      // The first decision stands (a new owner sends the same one again).
      if (this.isDecided(id)) {
        this.repeats += 1;
        return NOTHING;
      }
      if (s.outcome === 'accepted') this.acceptedIds.add(id);
      else this.rejectedIds.set(id, s.error?.code ?? 'unknown');
      return { decided: true, programmed: false };
    }
    if (this.rejectedIds.has(id)) {
      this.repeats += 1;
      return NOTHING;
    }
    let decided = false;
    if (!this.acceptedIds.has(id)) {
      // Only an accepted intent gets a final status: its `accepted` is on its way.
      this.finalBeforeDecision += 1;
      this.acceptedIds.add(id);
      decided = true;
    }
    if (this.programmedIds.has(id) || (s.outcome === 'incomplete' && this.incompleteIds.has(id))) {
      this.repeats += 1;
      return { decided, programmed: false };
    }
    if (s.outcome === 'incomplete') {
      this.incompleteIds.add(id);
      return { decided, programmed: false };
    }
    // Programmed after all (late acks, or another owner's count): programmed it is.
    this.incompleteIds.delete(id);
    this.programmedIds.add(id);
    return { decided, programmed: true };
  }

  /** Marks every intent still undecided as refused with `code` (the run's end); returns how many. */
  closeUndecided(code: string): number {
    let n = 0;
    for (const id of this.ids)
      if (!this.isDecided(id)) {
        this.rejectedIds.set(id, code);
        n += 1;
      }
    return n;
  }
}

export interface ProgressCounts {
  decided: number;
  total: number;
  perSecond: number;
  programmed: number;
  accepted: number;
  hostsReached: number;
  hostsUsed: number;
}

const BAR = 30;
const MIN_BAR = 10;
/** Columns assumed when the terminal does not say (or says something unusable). */
export const DEFAULT_COLUMNS = 80;

const frac = (n: number, of: number): string => {
  const total = Math.max(0, Math.floor(of));
  return `${Math.min(Math.max(0, Math.floor(n)), total)}/${total}`;
};

/**
 * The progress line, at most `columns - 1` characters (writing the last column
 * makes some terminals wrap, and a wrapped line leaves a stale row behind on
 * each redraw). ASCII only, so characters are columns. The widest form that fits:
 * a bar and full labels, a bar and shorter labels, then the fewest words with
 * fields dropped from the end (the rate and hosts before the programmed count) —
 * a number is cut only below ~10 columns. `Infinity` gives the full form.
 */
export function progressLine(c: ProgressCounts, columns: number): string {
  const room =
    columns === Infinity
      ? Infinity
      : (Number.isFinite(columns) && columns >= 1 ? Math.floor(columns) : DEFAULT_COLUMNS) - 1;
  const rate = `${Number.isFinite(c.perSecond) ? Math.max(0, Math.round(c.perSecond)) : 0}/s`;
  const intents = frac(c.decided, c.total);
  const programmed = frac(c.programmed, c.accepted);
  const hosts = frac(c.hostsReached, c.hostsUsed);
  const long = [`${intents} intents`, rate, `programmed ${programmed}`, `hosts reached ${hosts}`];
  const short = [`${intents} intents`, rate, `programmed ${programmed}`, `hosts ${hosts}`];
  // Narrow: what matters most first, so dropping from the end loses the least.
  const tiny = [`${intents} intents`, `prog ${programmed}`, rate, `hosts ${hosts}`];
  const done = c.total > 0 ? Math.min(1, Math.max(0, c.decided / c.total)) : 0;
  const bar = (width: number): string => {
    const filled = Math.round(done * width);
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] `;
  };
  for (const fields of [long, short]) {
    const text = fields.join('  ');
    const width = Math.min(BAR, room - text.length - 3);
    if (width >= MIN_BAR) return bar(width) + text;
  }
  for (let n = tiny.length; n > 0; n--) {
    const text = tiny.slice(0, n).join(' ');
    if (text.length <= room) return text;
  }
  return tiny[0]!.slice(0, Math.max(0, room));
}
