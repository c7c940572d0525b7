/**
 * The nats-server configuration, rendered from code so that local provisioning,
 * testcontainers, `alcor nats-config` and so docker-compose all run the same server: JetStream, and the `partition()` subject mapping that
 * turns `intent.<vpcId>` into `intent.<bucket>.<vpcId>` (DESIGN §4.1).
 */
import { subjects } from '../../shared/index.js';
import {
  ACCOUNTS,
  ACCOUNT_LIMITS,
  MAX_PENDING,
  alcorExports,
  hostsImports,
  renderLimits,
  type AuthorizationFiles,
} from './auth.js';

export interface NatsServerConfig {
  host: string;
  port: number;
  /** HTTP monitoring port (health, /varz memory for benchmarks); 0 disables it. */
  monitorPort: number;
  storeDir: string;
  serverName: string;
  bucketCount: number;
  /**
   * JetStream fsync interval. JetStream acknowledges a write before it is on disk;
   * with the server default ("2m") a power loss can lose acknowledged writes up to
   * that age. "always" fsyncs every write (slowest, survives power loss). See
   * docs/durability in README.
   */
  syncInterval?: string;
  maxPayload?: number;
  /**
   * JetStream's file storage on this server, in bytes (`max_file_store`; default:
   * three quarters of the disk's free space at start). Past it, every write is
   * refused with "insufficient resources" and the server goes on; keep it below
   * the filesystem's size — a server whose disk fills up disables JetStream.
   */
  maxFileStore?: number;
  /**
   * Messages a stream's ingest queue holds before the server refuses more with 429
   * (nats-server's default: 100,000). Tests lower it to show what a publisher that
   * outruns the server meets.
   */
  streamMaxBufferedMsgs?: number;
  /**
   * Accounts and users (DESIGN §9, infra/nats/auth.ts): the rendered account files,
   * relative to the configuration file's directory, included so that they can be
   * rewritten and reloaded (SIGHUP) when hosts join. Absent: no auth, one global
   * account.
   */
  authorization?: AuthorizationFiles;
  /** A node of a NATS cluster (JetStream replicated over its nodes): its route port and its peers'. */
  cluster?: { name: string; port: number; routes: number[] };
  /**
   * TLS on the client port (PEM files): every client must speak TLS, and verifies
   * the server with the CA (NATS_CA_FILE). Routes and monitoring are not covered.
   */
  tls?: { certFile: string; keyFile: string };
}

export const DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024;

export function renderNatsConfig(config: NatsServerConfig): string {
  const lines = [
    '# Rendered by infra/nats/serverConfig.ts — edit that file, not this output.',
    `server_name: ${JSON.stringify(config.serverName)}`,
    `host: ${JSON.stringify(config.host)}`,
    `port: ${config.port}`,
  ];
  if (config.monitorPort > 0) lines.push(`http_port: ${config.monitorPort}`);
  if (config.tls)
    lines.push(
      'tls {',
      `  cert_file: ${JSON.stringify(config.tls.certFile)}`,
      `  key_file: ${JSON.stringify(config.tls.keyFile)}`,
      '  timeout: 5',
      '}',
    );
  lines.push(
    `max_payload: ${config.maxPayload ?? DEFAULT_MAX_PAYLOAD}`,
    `max_pending: ${MAX_PENDING}`,
    '',
    'jetstream {',
    `  store_dir: ${JSON.stringify(config.storeDir)}`,
  );
  if (config.syncInterval !== undefined) {
    lines.push(`  sync_interval: ${JSON.stringify(config.syncInterval)}`);
  }
  if (config.maxFileStore !== undefined) lines.push(`  max_file_store: ${config.maxFileStore}`);
  if (config.streamMaxBufferedMsgs !== undefined) {
    lines.push(`  max_buffered_msgs: ${config.streamMaxBufferedMsgs}`);
  }
  const mapping = [
    '# Clients publish intent.<vpcId>; the server stores intent.<bucket>.<vpcId>.',
    'mappings {',
    `  ${JSON.stringify(subjects.intentMappingSource)}: ${JSON.stringify(
      subjects.intentMappingDestination(config.bucketCount),
    )}`,
    '}',
  ];
  lines.push('}', '');
  if (config.cluster) {
    lines.push(
      'cluster {',
      `  name: ${JSON.stringify(config.cluster.name)}`,
      `  host: ${JSON.stringify(config.host)}`,
      `  port: ${config.cluster.port}`,
      `  routes: [${config.cluster.routes.map((p) => JSON.stringify(`nats-route://${config.host}:${p}`)).join(', ')}]`,
      '}',
      '',
    );
  }
  const auth = config.authorization;
  if (!auth) lines.push(...mapping, '');
  else {
    // Accounts (DESIGN §9, infra/nats/auth.ts). Clients and hosts reach ALCOR only
    // through what it exports; the server rewrites their reply subjects into their
    // own account. The mapping runs in ALCOR, after the import: permissions are
    // checked on the subject a client sends, so it may send intent.<vpcId> and never
    // intent.<bucket>.<vpcId>.
    const from = `account: ${ACCOUNTS.alcor}`;
    const hosts = hostsImports();
    lines.push(
      // A client has this long to answer the server's nonce. The default (2 s) is
      // short for a process opening a thousand agents' connections on a busy machine.
      'authorization {',
      '  timeout: 10',
      '}',
      '',
      'accounts {',
      `  ${ACCOUNTS.alcor}: {`,
      '    jetstream: enabled',
      ...mapping.map((x) => '    ' + x),
      '    exports: [',
      ...alcorExports().map((x) => '      ' + x),
      '    ]',
      `    imports: [ { service: { account: ${ACCOUNTS.hosts}, subject: ${JSON.stringify(subjects.ncaStateAll)} } } ]`,
      `    include ${JSON.stringify(auth.alcorFile)}`,
      '  }',
      `  ${ACCOUNTS.client}: {`,
      renderLimits(ACCOUNT_LIMITS.client, '    '),
      '    imports: [',
      `      { service: { ${from}, subject: ${JSON.stringify(subjects.intentMappingSource)} } }`,
      `      { service: { ${from}, subject: ${JSON.stringify(subjects.applyIntents)} } }`,
      `      { stream: { ${from}, subject: ${JSON.stringify(subjects.statusAll)} } }`,
      '    ]',
      `    include ${JSON.stringify(auth.clientFile)}`,
      '  }',
      `  ${ACCOUNTS.hosts}: {`,
      renderLimits(ACCOUNT_LIMITS.hosts, '    '),
      '    imports: [',
      ...hosts.streams.map((x) => `      { stream: { ${from}, subject: ${JSON.stringify(x)} } }`),
      ...hosts.services.map(
        (x) => `      { service: { ${from}, subject: ${JSON.stringify(x.subject)} } }`,
      ),
      '    ]',
      // The oracle's question (`alcor check`): services ask, the host's agent answers.
      `    exports: [ { service: ${JSON.stringify(subjects.ncaStateAll)} } ]`,
      `    include ${JSON.stringify(auth.hostsFile)}`,
      '  }',
      '}',
      '',
    );
  }
  return lines.join('\n');
}
