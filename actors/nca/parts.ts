/**
 * An agent's parts of goal-state messages too large for one hop (issue 22), pure:
 * parts of one message (same VPC, target, revision and mode) are held until every
 * op of it is in, then the whole message comes out once, ops in order. A part
 * delivered twice (or split differently on another path) changes nothing. Time
 * is an input: parts still incomplete past a bound are dropped, and their VPCs
 * named, so the agent asks their full state again.
 */
import type { GoalStateMessage, GoalStateOp } from '../../shared/index.js';

interface Pending {
  message: Omit<GoalStateMessage, 'ops' | 'part'>;
  ops: Array<GoalStateOp | undefined>;
  have: number;
  since: number;
}

export interface PartsLimits {
  /** Messages being assembled at once; the oldest is dropped past it. */
  maxPending: number;
}

export type PartOutcome =
  | { state: 'complete'; message: GoalStateMessage }
  | { state: 'waiting' }
  /** Parts that contradict those held (another total): the message is dropped. */
  | { state: 'conflict'; vpcId: string };

const keyOf = (m: GoalStateMessage): string =>
  `${m.vpcId}\u0000${m.target}\u0000${m.revision}\u0000${m.mode}`;

export class PartsAssembler {
  private readonly pending = new Map<string, Pending>();
  /** VPCs whose parts were dropped (over the limit), to be resynced. */
  private readonly dropped: string[] = [];

  constructor(private readonly limits: PartsLimits = { maxPending: 64 }) {}

  get size(): number {
    return this.pending.size;
  }

  /** One message as it arrived: passed through whole, or a part taken in. */
  add(message: GoalStateMessage, now: number): PartOutcome {
    const part = message.part;
    if (!part) return { state: 'complete', message };
    const key = keyOf(message);
    let entry = this.pending.get(key);
    if (entry && entry.ops.length !== part.total) {
      this.pending.delete(key);
      return { state: 'conflict', vpcId: message.vpcId };
    }
    if (!entry) {
      if (this.pending.size >= this.limits.maxPending) {
        const [oldestKey, oldest] = this.pending.entries().next().value!;
        this.pending.delete(oldestKey);
        this.dropped.push(oldest.message.vpcId);
      }
      const { ops: _ops, part: _part, ...rest } = message;
      entry = {
        message: rest,
        ops: new Array<GoalStateOp | undefined>(part.total),
        have: 0,
        since: now,
      };
      this.pending.set(key, entry);
    }
    message.ops.forEach((op, i) => {
      const at = part.first + i;
      if (entry.ops[at] === undefined) entry.have += 1;
      entry.ops[at] = op;
    });
    if (entry.have < part.total) return { state: 'waiting' };
    this.pending.delete(key);
    return { state: 'complete', message: { ...entry.message, ops: entry.ops as GoalStateOp[] } };
  }

  /**
   * The VPCs to take again: those whose parts waited longer than `boundMs` by
   * `now`, and those dropped over the limit since the last call (each VPC once).
   */
  expire(now: number, boundMs: number): string[] {
    const out = new Set(this.dropped.splice(0));
    for (const [key, entry] of this.pending)
      if (now - entry.since > boundMs) {
        this.pending.delete(key);
        out.add(entry.message.vpcId);
      }
    return [...out];
  }
}
