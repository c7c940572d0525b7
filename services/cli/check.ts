/**
 * `alcor check [--vpc v | --host h]`: the convergence oracle (DESIGN §7) over the
 * running fleet. Every VPC (or one) is folded from EVENTS into what each host must
 * hold; every registered host's agent (or one) is asked what it holds
 * (`alcor.nca.state.<host>`, as digests); any difference is listed — missing,
 * extra, or at another revision or value. Hosts whose agent does not answer are
 * listed apart. Run it when the system is quiet: an intent in flight shows as a
 * difference until its hosts applied it.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { createHostDirectory } from '../../infra/index.js';
import { bindingLabel, subjects, type HostRecord } from '../../shared/index.js';
import {
  compareHost,
  decodeHostDigest,
  expectedState,
  foldEventLog,
  type Divergence,
  type HostDigestWire,
  type SkippedEvent,
} from '../nca/oracle.js';
import { checkId, lastRevision } from './history.js';
import { CliError, EXIT, table } from './output.js';

export interface CheckReport {
  scope: string;
  vpcs: number;
  hosts: number;
  converged: number;
  diverged: Array<Divergence & { binding: string }>;
  /** Hosts whose agent did not answer. */
  silent: string[];
  /** Messages in EVENTS that are not commits (passed over: nobody's append). */
  poison: SkippedEvent[];
  clean: boolean;
}

const encoder = new TextEncoder();
const CONCURRENCY = 64;

export async function check(
  nc: NatsConnection,
  options: { vpcId?: string; hostId?: string; timeoutMs?: number },
): Promise<CheckReport> {
  if (options.vpcId) await lastRevision(nc, options.vpcId);
  if (options.hostId) checkId(options.hostId, 'host');
  const directory = await createHostDirectory(nc);
  let hosts: HostRecord[];
  try {
    hosts = directory.all();
  } finally {
    await directory.stop();
  }
  if (options.hostId) {
    hosts = hosts.filter((h) => h.hostId === options.hostId);
    if (hosts.length === 0)
      throw new CliError(
        `no host ${options.hostId} in the topology registry (alcor topology show --hosts)`,
        EXIT.notFound,
      );
  }
  const poison: SkippedEvent[] = [];
  const states = await foldEventLog(nc, {
    ...(options.vpcId ? { vpcIds: [options.vpcId] } : {}),
    onSkipped: (s) => poison.push(s),
  });
  const expected = expectedState(states);
  const only = options.vpcId ? new Set([options.vpcId]) : undefined;
  const body = encoder.encode(JSON.stringify(options.vpcId ? { vpcIds: [options.vpcId] } : {}));

  const diverged: CheckReport['diverged'] = [];
  const silent: string[] = [];
  let converged = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < hosts.length) {
      const host = hosts[next++]!;
      let wire: HostDigestWire;
      try {
        const reply = await nc.request(subjects.ncaState(host.hostId), body, {
          timeout: options.timeoutMs ?? 3000,
        });
        wire = reply.json<{ vpcs: HostDigestWire }>().vpcs;
      } catch {
        silent.push(host.hostId);
        continue;
      }
      const found = compareHost(
        host.hostId,
        expected.get(host.hostId),
        decodeHostDigest(wire),
        only,
      );
      if (found.length === 0) converged += 1;
      for (const d of found) diverged.push({ ...d, binding: bindingLabel(host) });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  diverged.sort((a, b) => a.hostId.localeCompare(b.hostId) || a.vpcId.localeCompare(b.vpcId));
  silent.sort();
  return {
    scope: options.vpcId
      ? `VPC ${options.vpcId}`
      : options.hostId
        ? `host ${options.hostId}`
        : 'all',
    vpcs: states.length,
    hosts: hosts.length,
    converged,
    diverged,
    silent,
    poison,
    clean: diverged.length === 0 && silent.length === 0,
  };
}

const few = (xs: string[]): string =>
  xs.length === 0
    ? '-'
    : xs.length <= 3
      ? xs.join(',')
      : `${xs.slice(0, 3).join(',')},… (${xs.length})`;

export function renderCheck(r: CheckReport): string {
  const lines = [
    `oracle over ${r.scope}: ${r.vpcs} VPC(s) folded from EVENTS, ${r.hosts} host(s) asked`,
    `${r.converged} host(s) converged, ${new Set(r.diverged.map((d) => d.hostId)).size} diverged, ${r.silent.length} did not answer`,
  ];
  if (r.diverged.length > 0)
    lines.push(
      table(
        ['HOST', 'BINDING', 'VPC', 'MISSING', 'EXTRA', 'DIFFERENT'],
        r.diverged.map((d) => [
          d.hostId,
          d.binding,
          d.vpcId,
          few(d.missing),
          few(d.extra),
          few(d.different.map((x) => `${x.key}@${x.actualRev}≠${x.expectedRev}`)),
        ]),
      ),
    );
  if (r.silent.length > 0)
    lines.push(`no agent answered for: ${few(r.silent)} (is the NCA fleet running? npm run nca)`);
  for (const p of r.poison)
    lines.push(
      `warning: evt.${p.vpcId} at sequence ${p.revision} is not a commit (${p.error.code}: ${p.error.message.slice(0, 120)}); the VPC's actor and this check pass over it`,
    );
  lines.push(r.clean ? 'CLEAN: every host holds exactly what the log says' : 'NOT CLEAN');
  return lines.join('\n');
}
