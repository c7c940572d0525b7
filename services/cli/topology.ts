/**
 * `alcor topology load -f <file>` and `alcor topology show`: the topology registry
 * (KV `hosts`, DESIGN §4.7). A file is JSON or YAML, `{hosts: […]}` or a bare list;
 * it is checked whole before anything is written (a bad file writes nothing), and
 * against the registry: an underlay IP already held by another host is refused.
 * `--prune` also deletes registered hosts the file does not list.
 */
import { JetStreamApiError } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { createHostDirectory, putHosts } from '../../infra/index.js';
import {
  bindingLabel,
  clusterKey,
  kvBuckets,
  parseTopologyFile,
  type HostRecord,
} from '../../shared/index.js';
import { describeFault, readDocument } from './documents.js';
import { CliError, EXIT, table } from './output.js';

/** Largest topology file read (200,000 hosts at ~200 bytes each, with room). */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

/** The registry (KV hosts); a clear error when nothing has created it yet. */
async function openDirectory(nc: NatsConnection): ReturnType<typeof createHostDirectory> {
  try {
    return await createHostDirectory(nc);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.status === 404)
      throw new CliError(
        `the topology registry (KV ${kvBuckets.hosts}) does not exist yet: start a controller first (it creates the streams and buckets)`,
        EXIT.notFound,
      );
    throw err;
  }
}

/**
 * The registered hosts, read once (the watch stopped at once): all of them, or the
 * one named — a not-found error naming where to look when it is not registered.
 */
export async function registeredHosts(nc: NatsConnection, hostId?: string): Promise<HostRecord[]> {
  const directory = await openDirectory(nc);
  let hosts: HostRecord[];
  try {
    hosts = directory.all();
  } finally {
    await directory.stop();
  }
  if (hostId === undefined) return hosts;
  const one = hosts.filter((h) => h.hostId === hostId);
  if (one.length === 0)
    throw new CliError(
      `no host ${hostId} in the topology registry (alcor topology show --hosts)`,
      EXIT.notFound,
    );
  return one;
}

/** Reads and checks a topology file; every fault is a usage error naming where it is. */
export async function readTopologyFile(file: string): Promise<HostRecord[]> {
  const parsed = parseTopologyFile(await readDocument(file, MAX_FILE_BYTES));
  if (!parsed.ok) throw new CliError(describeFault(file, parsed.error), EXIT.usage);
  return parsed.value;
}

export interface LoadReport {
  file: string;
  hosts: number;
  added: number;
  changed: number;
  unchanged: number;
  pruned: number;
}

const same = (a: HostRecord, b: HostRecord): boolean =>
  a.region === b.region &&
  a.az === b.az &&
  a.dc === b.dc &&
  a.cluster === b.cluster &&
  a.underlayIp === b.underlayIp &&
  bindingLabel(a) === bindingLabel(b);

export async function loadTopology(
  nc: NatsConnection,
  file: string,
  options: { prune: boolean },
): Promise<LoadReport> {
  const hosts = await readTopologyFile(file);
  const directory = await openDirectory(nc);
  let current: HostRecord[];
  try {
    current = directory.all();
  } finally {
    await directory.stop();
  }
  const byId = new Map(current.map((h) => [h.hostId, h]));
  const listed = new Set(hosts.map((h) => h.hostId));
  const ipOwner = new Map(
    current.filter((h) => !options.prune || listed.has(h.hostId)).map((h) => [h.underlayIp, h]),
  );
  hosts.forEach((h, i) => {
    const owner = ipOwner.get(h.underlayIp);
    if (owner && owner.hostId !== h.hostId && !listed.has(owner.hostId)) {
      throw new CliError(
        describeFault(file, {
          code: 'duplicate_value',
          message: `${h.underlayIp} is the underlay IP of registered host ${owner.hostId} (use --prune if the file replaces it)`,
          path: `hosts.${i}.underlayIp`,
        }),
        EXIT.usage,
      );
    }
  });
  const writes = hosts.filter((h) => {
    const before = byId.get(h.hostId);
    return !before || !same(before, h);
  });
  await putHosts(nc, writes);
  let pruned = 0;
  if (options.prune) {
    const kv = await new Kvm(nc).open(kvBuckets.hosts);
    for (const h of current) {
      if (listed.has(h.hostId)) continue;
      await kv.delete(h.hostId);
      pruned += 1;
    }
  }
  const added = writes.filter((h) => !byId.has(h.hostId)).length;
  return {
    file,
    hosts: hosts.length,
    added,
    changed: writes.length - added,
    unchanged: hosts.length - writes.length,
    pruned,
  };
}

export interface TopologyReport {
  hosts: number;
  bindings: Record<string, number>;
  clusters: Array<{ cluster: string; hosts: number; bindings: Record<string, number> }>;
  list?: HostRecord[];
}

export async function topologyReport(
  nc: NatsConnection,
  withHosts: boolean,
): Promise<TopologyReport> {
  const hosts = (await registeredHosts(nc)).sort((a, b) => a.hostId.localeCompare(b.hostId));
  if (hosts.length === 0)
    throw new CliError('no hosts registered: alcor topology load -f <file>', EXIT.notFound);
  const bindings: Record<string, number> = {};
  const clusters = new Map<string, Record<string, number>>();
  for (const h of hosts) {
    const b = bindingLabel(h);
    bindings[b] = (bindings[b] ?? 0) + 1;
    const key = clusterKey(h);
    const per = clusters.get(key) ?? {};
    per[b] = (per[b] ?? 0) + 1;
    clusters.set(key, per);
  }
  return {
    hosts: hosts.length,
    bindings,
    clusters: [...clusters]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([cluster, per]) => ({
        cluster,
        hosts: Object.values(per).reduce((s, n) => s + n, 0),
        bindings: per,
      })),
    ...(withHosts ? { list: hosts } : {}),
  };
}

const counts = (per: Record<string, number>): string =>
  Object.entries(per)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');

export function renderTopology(r: TopologyReport): string {
  const lines = [
    `${r.hosts} hosts in ${r.clusters.length} clusters; ${counts(r.bindings)}`,
    '',
    table(
      ['CLUSTER', 'HOSTS', 'BINDINGS'],
      r.clusters.map((c) => [c.cluster, c.hosts, counts(c.bindings)]),
    ),
  ];
  if (r.list) {
    lines.push(
      '',
      table(
        ['HOST', 'CLUSTER', 'UNDERLAY', 'BINDING'],
        r.list.map((h) => [h.hostId, clusterKey(h), h.underlayIp, bindingLabel(h)]),
      ),
    );
  }
  return lines.join('\n');
}

export const renderLoad = (r: LoadReport): string =>
  `${r.file}: ${r.hosts} hosts — ${r.added} added, ${r.changed} changed, ${r.unchanged} unchanged${
    r.pruned > 0 ? `, ${r.pruned} pruned` : ''
  }`;
