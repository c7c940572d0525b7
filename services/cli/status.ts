/**
 * `alcor status <vpc>`: where the VPC stands — its revision and size (folded from
 * EVENTS), its decisions by outcome (STATUS), the intents still waiting for hosts
 * and those that ended incomplete. `alcor watch <vpc>`: its statuses as they come.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { readStreamRange } from '../../infra/index.js';
import { StatusSchema, streams, subjects, type Status } from '../../shared/index.js';
import { checkId, foldVpc, lastRevision } from './history.js';
import { table } from './output.js';

export interface VpcStatusReport {
  vpcId: string;
  revision: number;
  decidedAt?: string;
  state: string;
  size: {
    subnets: number;
    ports: number;
    groups: number;
    routes: number;
    hosts: number;
    clusters: number;
  };
  /** Intents decided (commits in EVENTS) and their outcomes in STATUS (within its retention). */
  intents: {
    decided: number;
    accepted: number;
    rejected: number;
    programmed: number;
    incomplete: number;
    awaitingHosts: number;
  };
  rejectedBy: Record<string, number>;
  awaiting: string[];
  incomplete: Array<{
    intentId: string;
    revision: number;
    missing: string[];
    failed: string[];
    error?: string;
  }>;
  recent: Array<{
    at: string;
    intentId: string;
    outcome: string;
    revision: number;
    detail: string;
  }>;
}

export const describeStatus = (s: Status): string =>
  s.error
    ? `${s.error.code}${s.error.path ? ` at ${s.error.path}` : ''}: ${s.error.message}`
    : s.hosts
      ? `hosts ${s.hosts.applied}/${s.hosts.total} applied`
      : '';

export async function vpcStatus(nc: NatsConnection, vpcId: string): Promise<VpcStatusReport> {
  const last = await lastRevision(nc, vpcId);
  let decided = 0;
  let decidedAt: Date | undefined;
  const state = await foldVpc(nc, vpcId, (r) => {
    decided += 1;
    decidedAt = r.decidedAt;
    return true;
  });
  const latest = new Map<string, { status: Status; at: Date }>();
  const recent: VpcStatusReport['recent'] = [];
  const counts = { accepted: 0, rejected: 0, programmed: 0, incomplete: 0 };
  const rejectedBy: Record<string, number> = {};
  for await (const m of readStreamRange(nc, streams.status, { filter: subjects.status(vpcId) })) {
    const parsed = StatusSchema.safeParse(JSON.parse(new TextDecoder().decode(m.data)));
    if (!parsed.success) continue;
    const s = parsed.data;
    counts[s.outcome] += 1;
    if (s.outcome === 'rejected') {
      const code = s.error?.code ?? 'unknown';
      rejectedBy[code] = (rejectedBy[code] ?? 0) + 1;
    }
    latest.set(s.intentId, { status: s, at: m.time });
    recent.push({
      at: m.time.toISOString(),
      intentId: s.intentId,
      outcome: s.outcome,
      revision: s.revision,
      detail: describeStatus(s),
    });
    if (recent.length > 10) recent.shift();
  }
  const awaiting = [...latest.values()]
    .filter((x) => x.status.outcome === 'accepted')
    .map((x) => x.status.intentId);
  const incomplete = [...latest.values()]
    .filter((x) => x.status.outcome === 'incomplete')
    .map(({ status: s }) => ({
      intentId: s.intentId,
      revision: s.revision,
      missing: s.hosts?.missing ?? [],
      failed: s.hosts?.failedHosts ?? [],
      ...(s.error ? { error: `${s.error.code}: ${s.error.message}` } : {}),
    }));
  return {
    vpcId,
    revision: last,
    ...(decidedAt ? { decidedAt: decidedAt.toISOString() } : {}),
    state: state.status,
    size: {
      subnets: state.subnets.size,
      ports: state.ports.size,
      groups: state.groups.size,
      routes: state.routes.size,
      hosts: state.hosts.size,
      clusters: state.clusters.size,
    },
    intents: { decided, ...counts, awaitingHosts: awaiting.length },
    rejectedBy,
    awaiting,
    incomplete,
    recent,
  };
}

export function renderVpcStatus(r: VpcStatusReport): string {
  const z = r.size;
  const i = r.intents;
  const lines = [
    `VPC ${r.vpcId}  ${r.state}  revision ${r.revision}  last decided ${r.decidedAt ?? '-'}`,
    `size: ${z.subnets} subnet(s), ${z.ports} port(s), ${z.groups} group(s), ${z.routes} route(s) on ${z.hosts} host(s) in ${z.clusters} cluster(s)`,
    `intents: ${i.decided} decided; ${i.accepted} accepted, ${i.rejected} rejected, ${i.programmed} programmed, ${i.incomplete} incomplete, ${i.awaitingHosts} waiting for hosts`,
  ];
  const reasons = Object.entries(r.rejectedBy);
  if (reasons.length > 0)
    lines.push(`rejected by reason: ${reasons.map(([c, n]) => `${c} ${n}`).join(', ')}`);
  if (r.awaiting.length > 0)
    lines.push(
      `waiting for hosts: ${r.awaiting.slice(0, 10).join(', ')}${r.awaiting.length > 10 ? ', …' : ''}`,
    );
  for (const x of r.incomplete.slice(0, 10)) {
    lines.push(
      `incomplete ${x.intentId} (revision ${x.revision}): missing ${x.missing.join(',') || '-'}; failed ${x.failed.join(',') || '-'}${x.error ? ` — ${x.error}` : ''}`,
    );
  }
  if (r.recent.length > 0)
    lines.push(
      `recent:\n${table(
        ['AT', 'INTENT', 'OUTCOME', 'REV', 'DETAIL'],
        r.recent.map((x) => [x.at.slice(11, 23), x.intentId, x.outcome, x.revision, x.detail]),
      ).replace(/^/gm, '  ')}`,
    );
  return lines.join('\n');
}

/** Prints each status of the VPC as it comes; resolves after `count` or `forMs`. */
export async function watchVpc(
  nc: NatsConnection,
  vpcId: string,
  options: { count?: number; forMs?: number; json: boolean; onReady?: () => void },
): Promise<number> {
  checkId(vpcId, 'VPC');
  let seen = 0;
  const sub = nc.subscribe(subjects.status(vpcId), {
    ...(options.count === undefined ? {} : { max: options.count }),
  });
  const timer =
    options.forMs === undefined ? undefined : setTimeout(() => sub.unsubscribe(), options.forMs);
  await nc.flush();
  options.onReady?.();
  for await (const m of sub) {
    const parsed = StatusSchema.safeParse(m.json());
    if (!parsed.success) continue;
    const s = parsed.data;
    seen += 1;
    process.stdout.write(
      options.json
        ? `${JSON.stringify({ at: new Date().toISOString(), ...s })}\n`
        : `${new Date().toISOString().slice(11, 23)}  ${s.outcome.padEnd(10)} ${s.intentId}  rev ${s.revision}  ${describeStatus(s)}\n`,
    );
  }
  clearTimeout(timer);
  return seen;
}
