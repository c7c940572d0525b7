/**
 * `alcor nats-config`: the NATS server configuration this system needs, for a
 * server of one's own (docs/deploy.md) — JetStream, the intent mapping, and with
 * accounts (the default) the users per role and per host with their permissions
 * (infra/nats/auth.ts) and their nkey seeds. The same renderer the local
 * provisioning runs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import {
  NATS_ROLES,
  NatsCredentials,
  renderNatsConfig,
  type AuthorizationFiles,
  type NatsServerConfig,
} from '../../infra/index.js';
import { readTopologyFile } from './topology.js';

/** The server's own settings, as the configuration renderer takes them. */
export type NatsServerSettings = Pick<
  NatsServerConfig,
  'host' | 'port' | 'monitorPort' | 'storeDir' | 'serverName' | 'bucketCount' | 'maxPayload' | 'tls'
>;

export interface NatsConfigOptions {
  out: string;
  auth: boolean;
  /** A topology file: each host gets its own user. */
  hostsFile?: string;
  server: NatsServerSettings;
}

export interface NatsConfigReport {
  config: string;
  auth: boolean;
  /** The seed file each role's processes take (NATS_NKEY_SEED_FILE). */
  seeds: Record<string, string>;
  /** Per-host seeds (`<hostId>.nk`, ALCOR_NCA_CREDENTIALS) and how many hosts. */
  hostsDir?: string;
  hosts: number;
}

export async function writeNatsConfig(o: NatsConfigOptions): Promise<NatsConfigReport> {
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  let authorization: AuthorizationFiles | undefined;
  const seeds: Record<string, string> = {};
  let hosts = 0;
  let credentials: NatsCredentials | undefined;
  if (o.auth) {
    credentials = new NatsCredentials(join(out, 'credentials'));
    if (o.hostsFile) {
      const records = await readTopologyFile(o.hostsFile);
      credentials.addHosts(records);
      hosts = records.length;
    }
    const files = credentials.render();
    // nats-server resolves an include against the including file's directory.
    authorization = {
      alcorFile: relative(out, files.alcorFile),
      clientFile: relative(out, files.clientFile),
      hostsFile: relative(out, files.hostsFile),
    };
    for (const role of NATS_ROLES) seeds[role] = credentials.roleSeedFile(role);
  }
  const config = join(out, 'nats.conf');
  writeFileSync(
    config,
    renderNatsConfig({ ...o.server, ...(authorization ? { authorization } : {}) }),
  );
  return {
    config,
    auth: o.auth,
    seeds,
    ...(credentials ? { hostsDir: credentials.hostsDir } : {}),
    hosts,
  };
}

export function renderNatsConfigReport(r: NatsConfigReport): string {
  const lines = [`wrote ${r.config}: run nats-server -c ${r.config}`];
  if (!r.auth) lines.push('no accounts: any client may connect (--no-auth)');
  else {
    lines.push("each process connects with its role's seed (NATS_NKEY_SEED_FILE):");
    for (const [role, file] of Object.entries(r.seeds)) lines.push(`  ${role.padEnd(11)} ${file}`);
    lines.push(
      r.hosts > 0
        ? `  ${r.hosts} hosts, one seed each in ${r.hostsDir} (ALCOR_NCA_CREDENTIALS)`
        : '  no hosts yet: run again with --hosts <topology file> as hosts join (seeds are kept)',
    );
  }
  return lines.join('\n');
}
