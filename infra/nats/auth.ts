/**
 * NATS accounts, users, permissions and limits (DESIGN §9, docs/security.md),
 * rendered into the server's configuration (infra/nats/serverConfig.ts).
 *
 * Isolation is by account. The streams, the KV buckets and every service live in
 * ALCOR; clients live in CLIENT; NCA hosts live in HOSTS. The other accounts reach
 * ALCOR only through what it exports and they import, so the server rewrites every
 * reply subject they set into their own account: an answer — ours, or the server's
 * own (a JetStream publish ack, a direct get) — can never land on a subject the
 * services own. Inside HOSTS each host's user may touch only its own subjects; an
 * answer one host directs at another's subject is refused by the agent (a goal
 * state names its target).
 *
 * Users (nkeys; the configuration carries only public keys, seeds are files):
 * - ALCOR: `service` (the harnesses and an operator who changes things:
 *   everything), `controller` and `southbound` (each only the writes its role
 *   makes), `operator` (reads streams and buckets, writes nothing);
 * - CLIENT: `client` (northbound callers);
 * - HOSTS: one user per NCA host.
 *
 * Hosts join by a reload of the users (SIGHUP); the accounts themselves never
 * change at runtime. (nats-server wires the service imports of an account that a
 * reload adds only at the next reload, and a cluster can lose the interest of such
 * an account: accounts are declared once, at start.)
 */
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import {
  InvalidIdError,
  LIMITS,
  isId,
  kafkaTopics,
  kvBuckets,
  placeOf,
  southboundKeys,
  streams,
  subjects,
  type HostRecord,
  type TopologyPlace,
} from '../../shared/index.js';

/** Users of fixed roles; hosts get users of their own (one per host). */
export type NatsRole = 'service' | 'controller' | 'southbound' | 'operator' | 'client';
export const NATS_ROLES: readonly NatsRole[] = [
  'service',
  'controller',
  'southbound',
  'operator',
  'client',
];

export const ACCOUNTS = { alcor: 'ALCOR', client: 'CLIENT', hosts: 'HOSTS' } as const;

export interface NatsPermissions {
  publish: { allow: string[]; deny?: string[] };
  subscribe?: { allow: string[]; deny?: string[] };
  /** May answer the messages it received, once each, within `expires`. */
  responses?: { max: number; expires: string };
}

/** Per-connection limits of an account's users (nats-server account `limits`). */
export interface NatsLimits {
  maxConnections: number;
  maxSubscriptions: number;
  maxPayload: number;
}

/**
 * Limits per account (docs/security.md says why each number). nats-server applies
 * `max_subscriptions` and `max_payload` per connection of the account and
 * `max_connections` to the account as a whole; the pending bytes per connection
 * are a server-wide setting (`max_pending`, {@link MAX_PENDING}).
 */
export const ACCOUNT_LIMITS: { client: NatsLimits; hosts: NatsLimits } = {
  client: {
    maxConnections: 10_000,
    maxSubscriptions: 10_000,
    // One sync-API batch, the largest message a client has reason to send.
    maxPayload: LIMITS.batchBytes,
  },
  hosts: {
    // Every host's agent, with room for restarts beside them.
    maxConnections: 1_000_000,
    // Its unicast subject, one multicast subject per VPC it hosts, its inbox and the
    // oracle's question: a compute host runs a few hundred VMs at most.
    maxSubscriptions: 4_096,
    // Its largest message is its answer to the oracle (~100 bytes per VPC held);
    // acks and resync requests are refused above 64 KiB by the controllers anyway.
    maxPayload: 1024 * 1024,
  },
};

/** Server-wide pending bytes per connection before it is cut as a slow consumer. */
export const MAX_PENDING = 64 * 1024 * 1024;

/** JetStream API calls no service makes at runtime: deleting or rewriting history. */
const DESTRUCTIVE_JS_API = [
  '$JS.API.STREAM.DELETE.*',
  '$JS.API.STREAM.PURGE.*',
  '$JS.API.STREAM.MSG.DELETE.*',
  '$JS.API.STREAM.SNAPSHOT.*',
  '$JS.API.STREAM.RESTORE.*',
  '$JS.API.ACCOUNT.PURGE.*',
  '$JS.API.META.>',
  '$JS.API.SERVER.>',
];

/** The JetStream plumbing every service uses: the API (not its destructive part), acks, flow control. */
const JS_CLIENT = ['$JS.API.>', '$JS.ACK.>', '$JS.FC.>'];

const kvWrites = (bucket: string, keys = '>'): string => `$KV.${bucket}.${keys}`;

/** Answers to requests arrive on inboxes; a sync-API call waits up to its programmed deadline. */
const RESPONSES = { max: 1, expires: '15m' };

/** What each role may do; undefined means no restriction (`service`). */
export function rolePermissions(role: NatsRole): NatsPermissions | undefined {
  switch (role) {
    case 'service':
      return undefined;
    case 'controller':
      return {
        publish: {
          allow: [
            ...JS_CLIENT,
            subjects.eventsAll,
            ...subjects.goalStatesAll,
            subjects.statusAll,
            // The sync API publishes intent.<vpcId>, checked after the mapping.
            subjects.intentsAll,
            'alcor.ctl.>',
            kvWrites(kvBuckets.controllers),
            kvWrites(kvBuckets.placement),
            kvWrites(kvBuckets.vpcSnapshots),
          ],
          deny: [
            ...DESTRUCTIVE_JS_API,
            kvWrites(kvBuckets.placement, southboundKeys.kafkaPartitionsAll),
            kvWrites(kvBuckets.placement, 'southbound.>'),
          ],
        },
        responses: RESPONSES,
      };
    case 'southbound':
      return {
        publish: {
          allow: [
            ...JS_CLIENT,
            kvWrites(kvBuckets.southbound),
            kvWrites(kvBuckets.placement, southboundKeys.kafkaPartitionsAll),
            kvWrites(kvBuckets.placement, 'southbound.>'),
            // Asks a VPC's owner to write its lost host mapping again.
            'alcor.ctl.mapping.*',
            // Where it put each goal state in Kafka (stream RELAYS, for `alcor trace`).
            subjects.relayReceiptsAll,
          ],
          deny: DESTRUCTIVE_JS_API,
        },
      };
    case 'operator':
      return operatorPermissions();
    case 'client':
      return {
        publish: { allow: [subjects.intentMappingSource, subjects.applyIntents] },
        subscribe: { allow: ['_INBOX.>', subjects.statusAll] },
      };
  }
}

/**
 * The read-only operator (`alcor` for looking, not for changing): stream and
 * bucket reads by direct get, which make no consumer; ordered consumers only on
 * the KV streams, where no service keeps a durable (a KV watch or key listing is
 * one), so no service's consumer can be changed; the oracle's question to the
 * agents; live statuses. No intent, no KV write, no stream or consumer of the
 * services touched, no request of a service answered (it may publish to no inbox).
 */
function operatorPermissions(): NatsPermissions {
  const kvStreams = Object.values(kvBuckets).map((b) => `KV_${b}`);
  return {
    publish: {
      allow: [
        '$JS.API.INFO',
        '$JS.API.STREAM.INFO.*',
        '$JS.API.STREAM.NAMES',
        '$JS.API.STREAM.LIST',
        '$JS.API.DIRECT.GET.>',
        '$JS.API.STREAM.MSG.GET.*',
        ...kvStreams.flatMap((s) => [
          `$JS.API.CONSUMER.CREATE.${s}`,
          `$JS.API.CONSUMER.CREATE.${s}.>`,
          `$JS.API.CONSUMER.INFO.${s}.*`,
          `$JS.API.CONSUMER.DELETE.${s}.*`,
          `$JS.API.CONSUMER.MSG.NEXT.${s}.*`,
        ]),
        '$JS.FC.>',
        subjects.ncaStateAll,
      ],
    },
    subscribe: { allow: ['_INBOX.>', subjects.statusAll] },
  };
}

/** What a host's account is given: its place, and its Kafka cluster if Kafka-bound. */
export interface HostGrant extends TopologyPlace {
  hostId: string;
  kafkaCluster?: string;
}

export function hostGrant(host: HostRecord): HostGrant {
  return {
    hostId: host.hostId,
    ...placeOf(host),
    ...(host.binding.type === 'kafka' ? { kafkaCluster: host.binding.cluster } : {}),
  };
}

/** A direct get of the last message on `subject` of `stream` (how a host reads a record). */
const directGet = (stream: string, subject: string): string =>
  `$JS.API.DIRECT.GET.${stream}.${subject}`;

/** The KV subject of a key (the stream `KV_<bucket>` stores it under it). */
const kvSubject = (bucket: string, key: string): string => `$KV.${bucket}.${key}`;

/**
 * What one host may reach in ALCOR: the streams it reads (its unicast, its
 * cluster's multicasts) and the services it calls (acks, resync, and direct gets
 * of its cluster's last multicast, its own registry record, its topic's Kafka
 * partition table). HOSTS imports these for every host ({@link hostsImports});
 * each host's user is allowed only its own.
 */
export function hostSubjects(host: HostGrant): { streams: string[]; services: string[] } {
  const [, multicast] = subjects.goalStatesOfCluster(host);
  const services = [
    subjects.acksOfHost(host.hostId),
    subjects.resync(host.hostId),
    directGet(streams.goalStates, multicast!),
    directGet(`KV_${kvBuckets.hosts}`, kvSubject(kvBuckets.hosts, host.hostId)),
  ];
  if (host.kafkaCluster !== undefined) {
    const key = southboundKeys.kafkaPartitions(host.kafkaCluster, kafkaTopics.cluster(host));
    services.push(directGet(`KV_${kvBuckets.placement}`, kvSubject(kvBuckets.placement, key)));
  }
  return { streams: [subjects.goalStateHost(host, host.hostId), multicast!], services };
}

/** What HOSTS imports from ALCOR: the union of every host's {@link hostSubjects}. */
export function hostsImports(): { streams: string[]; services: Array<{ subject: string }> } {
  return {
    streams: [...subjects.goalStatesAll],
    services: [
      { subject: subjects.acksAll },
      { subject: subjects.resyncAll },
      { subject: directGet(streams.goalStates, 'gsm.>') },
      { subject: directGet(`KV_${kvBuckets.hosts}`, kvSubject(kvBuckets.hosts, '*')) },
      {
        subject: directGet(
          `KV_${kvBuckets.placement}`,
          kvSubject(kvBuckets.placement, southboundKeys.kafkaPartitionsAll),
        ),
      },
    ],
  };
}

/** A host user's permissions: its own subjects of HOSTS' imports, its inbox, the oracle's question. */
export function hostPermissions(host: HostGrant): NatsPermissions {
  const own = hostSubjects(host);
  return {
    publish: { allow: own.services },
    subscribe: {
      allow: [
        ...own.streams,
        `${subjects.hostInbox(host.hostId)}.>`,
        subjects.ncaState(host.hostId),
      ],
    },
    responses: RESPONSES,
  };
}

export interface NatsUser {
  /** A name for the reader of the config (a comment); not used by the server. */
  name: string;
  nkey: string;
  permissions?: NatsPermissions;
}

const q = (s: string): string => JSON.stringify(s);
const list = (xs: readonly string[]): string => `[${xs.map(q).join(', ')}]`;

function renderPermissions(p: NatsPermissions): string {
  const side = (s: { allow: string[]; deny?: string[] }): string =>
    s.deny?.length
      ? `{ allow: ${list(s.allow)}, deny: ${list(s.deny)} }`
      : `{ allow: ${list(s.allow)} }`;
  const parts = [`publish: ${side(p.publish)}`];
  if (p.subscribe) parts.push(`subscribe: ${side(p.subscribe)}`);
  if (p.responses)
    parts.push(`allow_responses: { max: ${p.responses.max}, expires: ${q(p.responses.expires)} }`);
  return `{ ${parts.join(', ')} }`;
}

/** An account's `users` list. */
export function renderUsers(users: readonly NatsUser[], indent = ''): string[] {
  const lines = [`${indent}users: [`];
  for (const u of users) {
    lines.push(`${indent}  # ${u.name}`);
    lines.push(
      u.permissions
        ? `${indent}  { nkey: ${u.nkey}, permissions: ${renderPermissions(u.permissions)} }`
        : `${indent}  { nkey: ${u.nkey} }`,
    );
  }
  lines.push(`${indent}]`);
  return lines;
}

export function renderLimits(l: NatsLimits, indent = ''): string {
  return `${indent}limits: { max_connections: ${l.maxConnections}, max_subscriptions: ${l.maxSubscriptions}, max_payload: ${l.maxPayload} }`;
}

/** What ALCOR exports: everything another account may reach, and only that. */
export function alcorExports(): string[] {
  const imports = hostsImports();
  return [
    // Clients: async intents (a service, so a JetStream publish gets its ack), the
    // sync API, and statuses.
    `{ service: ${q(subjects.intentMappingSource)} }`,
    `{ service: ${q(subjects.applyIntents)} }`,
    `{ stream: ${q(subjects.statusAll)} }`,
    // Hosts: goal states, acks, resync (several controllers answer), direct gets.
    ...imports.streams.map((s) => `{ stream: ${q(s)} }`),
    ...imports.services.map((s) =>
      s.subject === subjects.resyncAll
        ? `{ service: ${q(s.subject)}, response_type: stream }`
        : `{ service: ${q(s.subject)} }`,
    ),
  ];
}

/** The files the server's configuration includes (infra/nats/serverConfig.ts). */
export interface AuthorizationFiles {
  /** Inside ALCOR: its users. */
  alcorFile: string;
  /** Inside CLIENT: its users. */
  clientFile: string;
  /** Inside HOSTS: one user per host. */
  hostsFile: string;
}

/**
 * A directory of nkey seeds: `<role>.nk`, and per host `hosts/<hostId>.nk` beside
 * `hosts/<hostId>.json` (its grant: place and Kafka cluster, which its account
 * names). Seeds are made once and kept, so adding hosts keeps every other user's
 * key; the files are rendered from everything in the directory, so processes adding
 * hosts side by side never drop each other's.
 */
export class NatsCredentials {
  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'hosts'), { recursive: true, mode: 0o700 });
  }

  get files(): AuthorizationFiles {
    return {
      alcorFile: join(this.dir, 'alcor-users.conf'),
      clientFile: join(this.dir, 'client-users.conf'),
      hostsFile: join(this.dir, 'hosts-users.conf'),
    };
  }

  roleSeedFile(role: NatsRole): string {
    return join(this.dir, `${role}.nk`);
  }

  /** The directory of per-host seeds (`<hostId>.nk`), as the fleet takes it. */
  get hostsDir(): string {
    return join(this.dir, 'hosts');
  }

  hostSeedFile(hostId: string): string {
    // A checked id cannot climb out of the directory.
    if (!isId(hostId)) throw new InvalidIdError('hostId', hostId);
    return join(this.hostsDir, `${hostId}.nk`);
  }

  /** The public key of the seed in `file`, making the seed first if there is none. */
  private ensure(file: string): string {
    if (existsSync(file)) return nkeys.fromSeed(readFileSync(file)).getPublicKey();
    const pair = nkeys.createUser();
    writeAtomically(file, pair.getSeed());
    return pair.getPublicKey();
  }

  /** Gives each host a user (kept if it has one) and records its grant. */
  addHosts(hosts: readonly HostRecord[]): void {
    for (const host of hosts) {
      this.ensure(this.hostSeedFile(host.hostId));
      const grant = JSON.stringify(hostGrant(host));
      const file = join(this.hostsDir, `${host.hostId}.json`);
      if (!existsSync(file) || readFileSync(file, 'utf8') !== grant) writeAtomically(file, grant);
    }
  }

  /** Every recorded host's grant. */
  hosts(): HostGrant[] {
    return readdirSync(this.hostsDir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => JSON.parse(readFileSync(join(this.hostsDir, f), 'utf8')) as HostGrant);
  }

  private roleUser(role: NatsRole): NatsUser {
    const permissions = rolePermissions(role);
    return {
      name: role,
      nkey: this.ensure(this.roleSeedFile(role)),
      ...(permissions ? { permissions } : {}),
    };
  }

  /** Writes the account files from the directory; returns their paths. */
  render(): AuthorizationFiles {
    const files = this.files;
    const header = '# Rendered by infra/nats/auth.ts — nkey users and their permissions.';
    const render = (users: NatsUser[]): string => [header, ...renderUsers(users), ''].join('\n');
    writeAtomically(
      files.alcorFile,
      render(NATS_ROLES.filter((r) => r !== 'client').map((r) => this.roleUser(r))),
    );
    writeAtomically(files.clientFile, render([this.roleUser('client')]));
    writeAtomically(
      files.hostsFile,
      render(
        this.hosts().map((h) => ({
          name: `nca ${h.hostId}`,
          nkey: this.ensure(this.hostSeedFile(h.hostId)),
          permissions: hostPermissions(h),
        })),
      ),
    );
    return files;
  }
}

/** Written whole or not at all (a reload or a reader never sees half a file), mode 0600. */
function writeAtomically(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  writeFileSync(tmp, data, { mode: 0o600 });
  renameSync(tmp, file);
}
