/**
 * NATS accounts, users and permissions per role (DESIGN §9), rendered into the
 * server's configuration (infra/nats/serverConfig.ts) as nkey users of the ALCOR
 * and CLIENT accounts. Each user holds an nkey
 * seed in a file (mode 0600); the server's configuration carries only the public
 * keys, so no secret is in the config and none is in code.
 *
 * - `service`: controllers, southbound modules, placement, the operator CLI and
 *   the test and demo harnesses. Everything (internal subjects are theirs).
 * - `client` (account CLIENT): northbound callers. Publish `intent.<vpcId>` (the
 *   unmapped form, so the server picks the bucket) and request
 *   `alcor.intents.apply`; read `status.>`. Never `intent.<bucket>.<vpc>`,
 *   `evt.>` or any internal subject: CLIENT sees only what ALCOR exports.
 * - one user per NCA host: subscribe only its own `gs…<hostId>` subject and the
 *   `gsm` subjects of its own cluster, its own inbox and its state query; publish
 *   only its own acks and resync requests (and replies to what it was asked).
 * - `fleet`: the simulated-agent harness's shared connection (the hosts KV, the
 *   Kafka partition table). Its hosts' own traffic goes over their host users.
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
  isId,
  kvBuckets,
  placeOf,
  southboundKeys,
  streams,
  subjects,
  type HostRecord,
  type TopologyPlace,
} from '../../shared/index.js';

export type NatsRole = 'service' | 'client' | 'fleet';
export const NATS_ROLES: readonly NatsRole[] = ['service', 'client', 'fleet'];

export interface NatsPermissions {
  publish: { allow: string[]; deny?: string[] };
  subscribe: { allow: string[]; deny?: string[] };
  /** May publish a reply to the reply subject of a message it received. */
  allowResponses?: boolean;
}

const kvApi = (bucket: string): string[] => [
  `$JS.API.STREAM.INFO.KV_${bucket}`,
  `$JS.API.STREAM.MSG.GET.KV_${bucket}`,
  `$JS.API.DIRECT.GET.KV_${bucket}`,
  `$JS.API.DIRECT.GET.KV_${bucket}.>`,
];

/** What each shared role may do; undefined means no restriction (`service`). */
export function rolePermissions(role: NatsRole): NatsPermissions | undefined {
  switch (role) {
    case 'service':
      return undefined;
    case 'client':
      return {
        publish: { allow: [subjects.intentMappingSource, subjects.applyIntents] },
        subscribe: { allow: ['_INBOX.>', subjects.statusAll] },
      };
    case 'fleet':
      return {
        publish: {
          allow: [
            '$JS.API.INFO',
            ...kvApi(kvBuckets.hosts),
            ...kvApi(kvBuckets.placement),
            // The hosts directory watches KV hosts (an ordered consumer).
            `$JS.API.CONSUMER.CREATE.KV_${kvBuckets.hosts}.>`,
            `$JS.API.CONSUMER.DELETE.KV_${kvBuckets.hosts}.>`,
            '$JS.FC.>',
            // Kafka partition assignments: KV placement, `kafka.*` keys only.
            `$KV.${kvBuckets.placement}.${southboundKeys.kafkaPartitionsAll}`,
          ],
        },
        subscribe: { allow: ['_INBOX.>'] },
      };
  }
}

/** What one NCA host may do (DESIGN §9). */
export function hostPermissions(host: TopologyPlace & { hostId: string }): NatsPermissions {
  const [, multicastOfCluster] = subjects.goalStatesOfCluster(host);
  return {
    publish: {
      allow: [
        subjects.acksOfHost(host.hostId),
        subjects.resync(host.hostId),
        // The last stored multicast of its cluster's VPCs (the catch-up check on a
        // new multicast subscription, services/nca/fleet.ts).
        `$JS.API.DIRECT.GET.${streams.goalStates}.${multicastOfCluster!}`,
      ],
    },
    subscribe: {
      allow: [
        subjects.goalStateHost(host, host.hostId),
        multicastOfCluster!,
        `${subjects.hostInbox(host.hostId)}.>`,
        subjects.ncaState(host.hostId),
      ],
    },
    allowResponses: true,
  };
}

export interface NatsUser {
  /** A name for the reader of the config (a comment); not used by the server. */
  name: string;
  nkey: string;
  permissions?: NatsPermissions;
}

function renderPermissions(p: NatsPermissions): string {
  const list = (xs: string[]): string => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
  const side = (s: { allow: string[]; deny?: string[] }): string =>
    s.deny?.length
      ? `{ allow: ${list(s.allow)}, deny: ${list(s.deny)} }`
      : `{ allow: ${list(s.allow)} }`;
  const parts = [`publish: ${side(p.publish)}`, `subscribe: ${side(p.subscribe)}`];
  if (p.allowResponses) parts.push('allow_responses: true');
  return `{ ${parts.join(', ')} }`;
}

/** An account's `users` list (an include of the server's configuration). */
export function renderUsers(users: readonly NatsUser[]): string {
  const lines = [
    '# Rendered by infra/nats/auth.ts — nkey users and their permissions.',
    'users: [',
  ];
  for (const u of users) {
    lines.push(`  # ${u.name}`);
    lines.push(
      u.permissions
        ? `  { nkey: ${u.nkey}, permissions: ${renderPermissions(u.permissions)} }`
        : `  { nkey: ${u.nkey} }`,
    );
  }
  lines.push(']', '');
  return lines.join('\n');
}

/**
 * A directory of nkey seeds: `<role>.nk`, and per host `hosts/<hostId>.nk` beside
 * `hosts/<hostId>.json` (its place, which its permissions name). Seeds are made
 * once and kept, so adding hosts keeps every other user's key; the authorization
 * file is rendered from everything in the directory, so processes adding hosts
 * side by side never drop each other's.
 */
export class NatsCredentials {
  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'hosts'), { recursive: true, mode: 0o700 });
  }

  /** The users of each account, as the server's configuration includes them. */
  get usersFiles(): { alcorUsersFile: string; clientUsersFile: string } {
    return {
      alcorUsersFile: join(this.dir, 'alcor-users.conf'),
      clientUsersFile: join(this.dir, 'client-users.conf'),
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

  /** Gives each host a user (kept if it has one) and records its place. */
  addHosts(hosts: readonly HostRecord[]): void {
    for (const host of hosts) {
      this.ensure(this.hostSeedFile(host.hostId));
      const place = JSON.stringify({ hostId: host.hostId, ...placeOf(host) });
      const file = join(this.hostsDir, `${host.hostId}.json`);
      if (!existsSync(file) || readFileSync(file, 'utf8') !== place) writeAtomically(file, place);
    }
  }

  /** Every role's user and every recorded host's, with their permissions. */
  users(): NatsUser[] {
    const users: NatsUser[] = NATS_ROLES.map((role) => {
      const permissions = rolePermissions(role);
      return {
        name: role,
        nkey: this.ensure(this.roleSeedFile(role)),
        ...(permissions ? { permissions } : {}),
      };
    });
    for (const file of readdirSync(this.hostsDir).sort()) {
      if (!file.endsWith('.json')) continue;
      const host = JSON.parse(readFileSync(join(this.hostsDir, file), 'utf8')) as TopologyPlace & {
        hostId: string;
      };
      users.push({
        name: `nca ${host.hostId}`,
        nkey: this.ensure(this.hostSeedFile(host.hostId)),
        permissions: hostPermissions(host),
      });
    }
    return users;
  }

  /** Writes each account's users file from the directory; returns their paths. */
  render(): { alcorUsersFile: string; clientUsersFile: string } {
    const users = this.users();
    const files = this.usersFiles;
    const isClient = (u: NatsUser): boolean => u.name === 'client';
    writeAtomically(files.alcorUsersFile, renderUsers(users.filter((u) => !isClient(u))));
    writeAtomically(files.clientUsersFile, renderUsers(users.filter(isClient)));
    return files;
  }
}

/** Written whole or not at all (a reload or a reader never sees half a file), mode 0600. */
function writeAtomically(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  writeFileSync(tmp, data, { mode: 0o600 });
  renameSync(tmp, file);
}
