/**
 * Facts in stream EVENTS (DESIGN §4.2). One commit per intent, so that every intent
 * leaves exactly one trace: its accepted events, or one IntentRejected. An EVENTS
 * message holds one commit, or — a group commit — several commits of one VPC
 * decided one after another and appended together by one compare-and-set
 * (docs/contracts.md). The VPC's revision is the EVENTS sequence of the message;
 * every fact in it carries that revision, so the commits of a group share it.
 */
import { z } from 'zod';
import { cidr, id, ipv4, mac, revision } from './fields.js';
import { SecurityGroupRule, decodeJson } from './intent.js';
import { parseWith, type Result } from './validation.js';

const place = z.strictObject({ region: id, az: id, dc: id, cluster: id });
/** Where a port is bound: its host and the host's place, looked up when decided. */
const binding = z.strictObject({ hostId: id, place, securityGroupIds: z.array(id) });

export const VpcEventSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('VpcCreated'), cidr, vni: z.number().int() }),
  z.strictObject({ type: z.literal('VpcDeleted') }),
  z.strictObject({ type: z.literal('SubnetCreated'), subnetId: id, cidr, gatewayIp: ipv4 }),
  z.strictObject({ type: z.literal('SubnetDeleted'), subnetId: id }),
  z.strictObject({
    type: z.literal('PortCreated'),
    portId: id,
    subnetId: id,
    ip: ipv4,
    mac,
    to: binding,
  }),
  /** A migration (host changed) and/or a change of security groups; `from` is the pre-image. */
  z.strictObject({ type: z.literal('PortUpdated'), portId: id, from: binding, to: binding }),
  z.strictObject({ type: z.literal('PortDeleted'), portId: id, subnetId: id, from: binding }),
  z.strictObject({
    type: z.literal('SecurityGroupCreated'),
    sgId: id,
    rules: z.array(SecurityGroupRule),
  }),
  z.strictObject({
    type: z.literal('SecurityGroupUpdated'),
    sgId: id,
    rules: z.array(SecurityGroupRule),
  }),
  z.strictObject({ type: z.literal('SecurityGroupDeleted'), sgId: id }),
  z.strictObject({ type: z.literal('RouteSet'), destination: cidr, nextHop: ipv4 }),
  z.strictObject({ type: z.literal('RouteDeleted'), destination: cidr }),
  z.strictObject({
    type: z.literal('IntentRejected'),
    code: z.string(),
    message: z.string(),
    path: z.string().optional(),
  }),
]);
export type VpcEvent = z.infer<typeof VpcEventSchema>;
export type VpcEventType = VpcEvent['type'];
export type PortBinding = z.infer<typeof binding>;

export const EventCommitSchema = z
  .strictObject({
    intentId: id.describe("the intent's id (`invalid-<seq>` when it had none readable)"),
    /** The intent's kind as received (may be unknown for a rejected one). */
    kind: z.string().describe("the intent's kind (`unknown` when it did not validate)"),
    vpcId: id,
    /** The intent's INTENTS sequence: the VPC's cursor after this commit. */
    cursor: revision.describe("the intent's INTENTS sequence: the VPC's cursor after this commit"),
    /** When the intent was received (its INTENTS timestamp), ISO 8601. */
    at: z.string().describe('when the intent was stored in INTENTS, ISO 8601'),
    events: z.array(VpcEventSchema).min(1).describe('its accepted events, or one IntentRejected'),
    /**
     * The revision through which the VPC's goal states and statuses were all out when
     * this commit was appended: a new owner publishes again only what is after it.
     */
    published: revision
      .optional()
      .describe("the revision through which the VPC's goal states and statuses were out"),
  })
  .meta({ title: 'commit' });
export type EventCommit = z.infer<typeof EventCommitSchema>;

/** Most commits one group message holds (the server also bounds its bytes). */
export const MAX_GROUP_COMMITS = 256;

/** A group commit: several commits of one VPC in one EVENTS message. */
export const EventGroupSchema = z.strictObject({
  vpcId: id,
  commits: z.array(EventCommitSchema).min(2).max(MAX_GROUP_COMMITS),
});
export type EventGroup = z.infer<typeof EventGroupSchema>;

/** A commit as read back from EVENTS: with its sequence, the revision. */
export interface RecordedCommit {
  revision: number;
  commit: EventCommit;
}

export function parseEventCommit(input: unknown): Result<EventCommit> {
  return parseWith(EventCommitSchema, input, 'event commit');
}

/**
 * A message of `evt.<vpcId>` as the commits of that VPC it holds (one, or a group),
 * or why it is not one (not JSON, not a commit, another VPC's). EVENTS is written
 * only by controllers, but whatever it holds must replay: anything else is skipped,
 * not folded.
 */
export function decodeEventMessage(vpcId: string, data: Uint8Array): Result<EventCommit[]> {
  const json = decodeJson(data, Number.MAX_SAFE_INTEGER);
  if (!json.ok) return json;
  const value = json.value as { commits?: unknown } | null;
  const isGroup = typeof value === 'object' && value !== null && 'commits' in value;
  const parsed: Result<EventCommit[]> = isGroup
    ? (() => {
        const g = parseWith(EventGroupSchema, value, 'event group');
        return g.ok ? { ok: true, value: g.value.commits } : g;
      })()
    : (() => {
        const c = parseEventCommit(value);
        return c.ok ? { ok: true, value: [c.value] } : c;
      })();
  if (!parsed.ok) return parsed;
  const other = parsed.value.find((c) => c.vpcId !== vpcId);
  if (other)
    return {
      ok: false,
      error: {
        code: 'wrong_stream',
        message: `a commit of ${other.vpcId} on evt.${vpcId}`,
        path: 'vpcId',
      },
    };
  return parsed;
}

/** The EVENTS message of these commits of one VPC: the commit itself, or a group. */
export function encodeEventMessage(commits: readonly EventCommit[]): string {
  if (commits.length === 1) return JSON.stringify(commits[0]);
  const group: EventGroup = { vpcId: commits[0]!.vpcId, commits: [...commits] };
  return JSON.stringify(group);
}
