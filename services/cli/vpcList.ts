/**
 * `alcor vpc list`: every VPC EVENTS knows, with its revision (the sequence of its
 * last commit), how many commits it has, and when it last decided something; with
 * `-o wide`, its last intent and that intent's outcome. Read with one stream info
 * (the subjects and their counts) and direct gets of each VPC's last message, a
 * few hundred at a time: no folding, quick at any size.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { decodeEventMessage, streams, subjects } from '../../shared/index.js';
import { age } from './hosts.js';
import { headers, table, wide } from './output.js';

export interface VpcListReport {
  vpcs: Array<{
    vpcId: string;
    revision: number;
    commits: number;
    decidedAt: string;
    lastIntent?: { intentId: string; kind: string; outcome: 'accepted' | 'rejected' };
  }>;
}

/** Subjects per multi-last direct get. */
const CHUNK = 256;

export async function vpcList(nc: NatsConnection, prefix?: string): Promise<VpcListReport> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(streams.events, { subjects_filter: subjects.eventsAll });
  const counts = Object.entries(info.state.subjects ?? {})
    .map(([subject, n]) => [subject.slice(subject.indexOf('.') + 1), n] as const)
    .filter(([vpcId]) => !prefix || vpcId.startsWith(prefix))
    .sort(([a], [b]) => a.localeCompare(b));
  const vpcs: VpcListReport['vpcs'] = [];
  for (let i = 0; i < counts.length; i += CHUNK) {
    const chunk = counts.slice(i, i + CHUNK);
    const last = new Map<string, { seq: number; time: Date; data: Uint8Array }>();
    const batch = await jsm.direct.getLastMessagesFor(streams.events, {
      multi_last: chunk.map(([vpcId]) => subjects.event(vpcId)),
    });
    for await (const m of batch)
      last.set(m.subject.slice(m.subject.indexOf('.') + 1), {
        seq: m.seq,
        time: m.time,
        data: m.data,
      });
    for (const [vpcId, commits] of chunk) {
      const m = last.get(vpcId);
      if (!m) continue; // its messages aged out between the two reads
      const decoded = decodeEventMessage(vpcId, m.data);
      const commit = decoded.ok ? decoded.value.at(-1) : undefined;
      vpcs.push({
        vpcId,
        revision: m.seq,
        commits,
        decidedAt: m.time.toISOString(),
        ...(commit
          ? {
              lastIntent: {
                intentId: commit.intentId,
                kind: commit.kind,
                outcome: commit.events[0]?.type === 'IntentRejected' ? 'rejected' : 'accepted',
              },
            }
          : {}),
      });
    }
  }
  return { vpcs };
}

export function renderVpcList(r: VpcListReport, now = Date.now()): string {
  const rows = r.vpcs.map((v) => [
    v.vpcId,
    v.revision,
    v.commits,
    age(now - Date.parse(v.decidedAt)),
    ...(wide()
      ? [v.lastIntent?.intentId ?? '-', v.lastIntent?.kind ?? '-', v.lastIntent?.outcome ?? '-']
      : []),
  ]);
  const lines = [
    table(
      [
        'VPC',
        'REVISION',
        'COMMITS',
        'LAST DECIDED',
        ...(wide() ? ['LAST INTENT', 'KIND', 'OUTCOME'] : []),
      ],
      rows,
    ),
  ];
  if (headers()) lines.push(`${r.vpcs.length} VPC(s)`);
  return lines.join('\n');
}
