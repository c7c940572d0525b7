/**
 * Membership by heartbeat in a KV bucket whose max age is the TTL (DESIGN §4.7):
 * `member.<id>` is re-put every interval; a member that stops heartbeating
 * disappears one TTL after its last put. Optionally, leadership: the `leader` key
 * is created by whoever finds it absent and renewed by compare-and-set, so it
 * expires with its holder (DESIGN §5).
 *
 * The lease: a member may act as a member only until its last successful put plus
 * the TTL, less a margin, by its own clock. A member that finds its lease expired
 * (paused, cut off) does not renew it in place: it reports the loss, takes a new
 * incarnation and registers again, so whatever it held is handed on as from a dead
 * member. Callers check `leaseValid()` before each write they make as a member.
 */
import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  decodeLeaderRecord,
  decodeMemberRecord,
  type LeaderRecord,
  type MemberRecord,
} from '../../shared/index.js';
import type { Logger } from '../logger.js';

export interface MembershipOptions {
  /** KV bucket (`controllers`, `southbound`); its max age must be `ttlMs`. */
  bucket: string;
  id: string;
  capacity?: number;
  /** Takes part in placement (false: static assignment). */
  placed?: boolean;
  ttlMs: number;
  /** Heartbeat period (default ttl / 6). */
  intervalMs?: number;
  /** Compete for the `leader` key. */
  lead?: boolean;
  /** The loads reported in each heartbeat. */
  loads?: () => Record<string, number>;
  logger: Logger;
  /** The lease expired; work done as a member must stop. Awaited before re-registering. */
  onLeaseLost?: (lostIncarnation: string) => Promise<void> | void;
}

export interface LiveMember {
  record: MemberRecord;
  revision: number;
}

export interface Membership {
  readonly id: string;
  /** The current run of this member (changes after a lost lease). */
  incarnation: () => string;
  leaseValid: () => boolean;
  isLeader: () => boolean;
  /** Live members, sorted by id. */
  members: () => Promise<LiveMember[]>;
  /** Whether member `id` is alive in incarnation `incarnation`. */
  alive: (id: string, incarnation: string) => Promise<boolean>;
  /** Runs one heartbeat now (tests, and at start). */
  beat: () => Promise<void>;
  stop: () => Promise<void>;
}

export const newIncarnation = (): string =>
  Date.now().toString(36) + randomBytes(3).toString('hex').slice(0, 4);

const encoder = new TextEncoder();
const memberKey = (id: string): string => `member.${id}`;
const LEADER_KEY = 'leader';

export async function createMembership(
  nc: NatsConnection,
  options: MembershipOptions,
): Promise<Membership> {
  const kv: KV = await new Kvm(nc).open(options.bucket);
  const { id, ttlMs, logger } = options;
  const interval = options.intervalMs ?? Math.max(100, Math.floor(ttlMs / 6));
  const margin = Math.max(interval, Math.floor(ttlMs / 5));
  const startedAt = new Date().toISOString();
  let incarnation = newIncarnation();
  let leaseUntil = 0;
  let registered = false;
  let leaderRevision = 0;
  let leaderUntil = 0;
  let stopped = false;
  let beating: Promise<void> | undefined;

  const leaseValid = (): boolean => registered && Date.now() < leaseUntil;
  const isLeader = (): boolean => leaderRevision > 0 && Date.now() < leaderUntil && leaseValid();

  async function lose(): Promise<void> {
    const lost = incarnation;
    registered = false;
    leaderRevision = 0;
    incarnation = newIncarnation();
    logger.warn({ member: id, lost, incarnation }, 'membership lease expired; registering again');
    await options.onLeaseLost?.(lost);
  }

  async function lead(): Promise<void> {
    const record: LeaderRecord = { id, incarnation, since: new Date().toISOString() };
    const sent = Date.now();
    try {
      leaderRevision =
        leaderRevision > 0
          ? await kv.update(LEADER_KEY, encoder.encode(JSON.stringify(record)), leaderRevision)
          : await kv.create(LEADER_KEY, encoder.encode(JSON.stringify(record)));
      if (leaderUntil === 0) logger.info({ member: id, incarnation }, 'became placement leader');
      leaderUntil = sent + ttlMs - margin;
    } catch {
      // Someone else holds it (or ours expired and was taken).
      if (leaderRevision > 0) logger.warn({ member: id }, 'lost placement leadership');
      leaderRevision = 0;
      leaderUntil = 0;
    }
  }

  async function beatOnce(): Promise<void> {
    if (registered && Date.now() >= leaseUntil) await lose();
    if (stopped) return;
    const record: MemberRecord = {
      id,
      incarnation,
      capacity: options.capacity ?? 1,
      placed: options.placed ?? true,
      startedAt,
      loads: options.loads?.() ?? {},
    };
    const sent = Date.now();
    try {
      await kv.put(memberKey(id), encoder.encode(JSON.stringify(record)));
      leaseUntil = sent + ttlMs - margin;
      registered = true;
    } catch (err) {
      logger.warn({ member: id, err }, 'heartbeat failed');
      return;
    }
    if (options.lead) await lead();
  }

  const beat = (): Promise<void> => (beating ??= beatOnce().finally(() => (beating = undefined)));

  await beat();
  const timer = setInterval(() => {
    beat().catch((err: unknown) => logger.error({ err }, 'heartbeat loop failed'));
  }, interval);

  return {
    id,
    incarnation: () => incarnation,
    leaseValid,
    isLeader,
    members: () => listMembers(nc, options.bucket, logger),
    alive: async (memberId, inc) =>
      (await readMember(kv, memberKey(memberId), logger))?.record.incarnation === inc,
    beat,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await beating;
      try {
        if (leaderRevision > 0) await kv.delete(LEADER_KEY, { previousSeq: leaderRevision });
      } catch {
        // Taken over meanwhile, or already expired.
      }
      try {
        await kv.delete(memberKey(id));
      } catch (err) {
        logger.warn({ err }, 'could not remove the member record; it expires with the TTL');
      }
      registered = false;
      leaderRevision = 0;
    },
  };
}

async function readMember(kv: KV, key: string, logger: Logger): Promise<LiveMember | undefined> {
  const entry = await kv.get(key);
  if (!entry || entry.operation !== 'PUT') return undefined;
  const parsed = decodeMemberRecord(entry.value);
  if (!parsed.ok) {
    logger.warn({ key, ...parsed.error }, 'member record ignored');
    return undefined;
  }
  return { record: parsed.value, revision: entry.revision };
}

/** The live members of a membership bucket, sorted by id (one stream info call lists them). */
export async function listMembers(
  nc: NatsConnection,
  bucket: string,
  logger: Logger,
): Promise<LiveMember[]> {
  const kv = await new Kvm(nc).open(bucket);
  const prefix = `$KV.${bucket}.`;
  const info = await (
    await jetstreamManager(nc)
  ).streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}member.*` });
  const keys = Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length));
  const found = await Promise.all(keys.map((k) => readMember(kv, k, logger)));
  return found
    .filter((m): m is LiveMember => m !== undefined)
    .sort((a, b) => (a.record.id < b.record.id ? -1 : 1));
}

/** The current leader's record, if any. */
export async function readLeader(
  nc: NatsConnection,
  bucket: string,
): Promise<LeaderRecord | undefined> {
  const entry = await (await new Kvm(nc).open(bucket)).get(LEADER_KEY);
  if (!entry || entry.operation !== 'PUT') return undefined;
  const parsed = decodeLeaderRecord(entry.value);
  return parsed.ok ? parsed.value : undefined;
}
