/**
 * `alcor` — the operator's CLI (commander: subcommands, `--help` everywhere,
 * usage errors with exit code 2). Global: `--nats-url` (or NATS_URL), `--json`.
 * Exit codes: 0 ok, 1 failure (e.g. NATS unreachable), 2 usage, 3 not found,
 * 4 done but not all of it took (intents rejected, pending or not programmed),
 * 5 refused by the server (credentials, permissions).
 */
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { NatsConnection } from '@nats-io/transport-node';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectNats, repoRoot } from '../../infra/index.js';
import { ConfigError } from '../../shared/index.js';
import { applyFile, applySucceeded, renderApply, type WaitFor } from './apply.js';
import {
  CliError,
  EXIT,
  OUTPUT_FORMATS,
  explainConnectError,
  explainServerError,
  print,
  setOutput,
  type OutputFormat,
} from './output.js';
import { placementReport, renderPlacement } from './placement.js';
import { loadTopology, renderLoad, renderTopology, topologyReport } from './topology.js';
import { check, renderCheck } from './check.js';
import { hostsReport, renderHosts } from './hosts.js';
import { completionScript } from './completion.js';
import { addExamples } from './examples.js';
import { renderVpcList, vpcList } from './vpcList.js';
import {
  DEFAULT_NATS_URL,
  listContexts,
  removeContext,
  renderConnection,
  renderContexts,
  resolveConnection,
  saveContext,
  selectContext,
  type ResolvedConnection,
} from './context.js';
import {
  parsePoint,
  renderTimeline,
  renderVpc,
  replayVpc,
  vpcShow,
  type Point,
} from './history.js';
import { renderVpcStatus, vpcStatus, watchVpc } from './status.js';
import { renderHostTimeline, renderTrace, replayHost, trace } from './trace.js';
import { renderNatsConfigReport, writeNatsConfig, type NatsServerSettings } from './natsConfig.js';
import {
  renderKafkaAclsReport,
  renderKafkaConfigReport,
  renderRedisConfigReport,
  renderTlsConfigReport,
  writeKafkaAcls,
  writeTlsConfig,
  writeKafkaConfig,
  writeRedisConfig,
  type KafkaConfigOptions,
} from './serverConfigs.js';

/** This package's version (package.json, next to the sources and to dist/). */
function version(): string {
  return (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string })
    .version;
}

interface GlobalOptions {
  /** `-o json` (or `--json`): the report as JSON. */
  json: boolean;
}

interface GlobalFlags {
  natsUrl?: string;
  context?: string;
  nkey?: string;
  creds?: string;
  tlsca?: string;
  json: boolean;
  output: OutputFormat;
  headers: boolean;
}

/** The NATS connection of this run: flags, --context, environment, selected context (context.ts). */
const connection = (): ResolvedConnection => resolveConnection(program.opts<GlobalFlags>());

/** The global flags as the commands use them (`--json` is `-o json`). */
function globals(): GlobalOptions {
  const f = program.opts<GlobalFlags>();
  return { json: f.json || f.output === 'json' };
}

// A reader that stops early (`alcor placement --buckets | head`) closes the pipe:
// what is left to print is not wanted, so that is a normal end, not a crash.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT.ok);
  throw err;
});

const program = new Command()
  .name('alcor')
  .description('Alcor Southbound: inspect and drive the control plane')
  .version(
    `alcor ${version()} (node ${process.versions.node})`,
    '-V, --version',
    'print the version',
  )
  .option('--nats-url <url>', `NATS server (else NATS_URL, a context, ${DEFAULT_NATS_URL})`)
  .option('--context <name>', 'a saved connection (alcor context ls; or ALCOR_CONTEXT)')
  .option('--nkey <file>', 'log in with this nkey seed (or NATS_NKEY_SEED_FILE)')
  .option('--creds <file>', 'log in with this .creds file, JWT mode (or NATS_CREDS)')
  .option('--tlsca <file>', "the CA of a tls:// server's certificate (or NATS_CA_FILE)")
  .addOption(
    new Option(
      '-o, --output <format>',
      'table, wide (more columns), json or yaml (snake_case keys)',
    )
      .choices(OUTPUT_FORMATS)
      .default('table'),
  )
  .option('--json', 'the same as -o json', false)
  .option('--no-headers', 'tables without their header line')
  .exitOverride()
  .configureHelp({ showGlobalOptions: true })
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program.hook('preAction', () => {
  const f = program.opts<GlobalFlags>();
  setOutput(f.json ? 'json' : f.output, f.headers);
});

async function withNats<T>(run: (nc: NatsConnection, o: GlobalOptions) => Promise<T>): Promise<T> {
  const o = globals();
  const c = connection();
  for (const [flag, file, from] of [
    ['--nkey', c.nkey, c.from.auth],
    ['--creds', c.creds, c.from.auth],
    ['--tlsca', c.ca, c.from.ca],
  ] as const)
    if (file && !existsSync(file))
      throw new CliError(`${flag} ${file} (from ${from}): no such file`, EXIT.usage);
  let nc: NatsConnection;
  try {
    nc = await connectNats(c.url, {
      name: 'alcor-cli',
      reconnect: false,
      timeoutMs: 3000,
      ...(c.nkey ? { nkeySeedFile: c.nkey } : {}),
      ...(c.creds ? { credsFile: c.creds } : {}),
      ...(c.ca ? { caFile: c.ca } : {}),
    });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw explainConnectError(err, c.url);
  }
  try {
    return await run(nc, o);
  } catch (err) {
    throw explainServerError(err, c.url) ?? err;
  } finally {
    await nc.close();
  }
}

program
  .command('placement')
  .description(
    'controller members, their loads against fair shares, max/avg, and the bucket table; southbound modules and their partitions',
  )
  .option('--buckets', 'also list every bucket: owner, since, weight, handoff state', false)
  .option('--partitions', 'also list every southbound partition: module, hosts', false)
  .action(async (opts: { buckets: boolean; partitions: boolean }) => {
    await withNats(async (nc, o) => {
      const report = await placementReport(nc, opts.buckets);
      print(o.json, report, (r) => renderPlacement(r, { partitions: opts.partitions }));
    });
  });

program
  .command('apply')
  .description(
    'send intents (JSON or YAML: one, a list, or {intents: [...]}) through the sync API, in file order',
  )
  .requiredOption('-f, --file <file>', 'intents file, or - for stdin')
  .addOption(
    new Option('--wait <what>', 'answer once decided, or once every affected host applied')
      .choices(['decided', 'programmed'])
      .default('decided'),
  )
  .addOption(
    new Option(
      '--wait-ms <ms>',
      'with --wait programmed: how long to wait after the decisions',
    ).argParser((v) => {
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < 1 || n > 3_600_000)
        throw new InvalidArgumentError('a whole number of milliseconds from 1 to 3600000');
      return n;
    }),
  )
  .action(async (opts: { file: string; wait: WaitFor; waitMs?: number }) => {
    await withNats(async (nc, o) => {
      const tty = process.stderr.isTTY && !o.json;
      const report = await applyFile(nc, opts.file, {
        wait: opts.wait,
        ...(opts.waitMs === undefined ? {} : { waitMs: opts.waitMs }),
        onProgress: (done, total) => {
          if (tty && total > 1000) process.stderr.write(`\rapplied ${done}/${total}`);
        },
      });
      if (tty && report.intents > 1000) process.stderr.write('\n');
      print(o.json, report, renderApply);
      if (!applySucceeded(report)) process.exitCode = EXIT.incomplete;
    });
  });

const topology = program
  .command('topology')
  .description('the topology registry (KV hosts): where each host is and how it is bound');

topology
  .command('load')
  .description(
    'register the hosts of a JSON or YAML file ({hosts: [...]} or a list); checked whole first',
  )
  .requiredOption('-f, --file <file>', 'topology file (.json, .yaml, .yml)')
  .option('--prune', 'also delete registered hosts the file does not list', false)
  .action(async (opts: { file: string; prune: boolean }) => {
    await withNats(async (nc, o) => {
      const report = await loadTopology(nc, opts.file, { prune: opts.prune });
      print(o.json, report, renderLoad);
    });
  });

topology
  .command('show')
  .description('hosts per cluster and binding; --hosts lists every host')
  .option('--hosts', 'list every host', false)
  .action(async (opts: { hosts: boolean }) => {
    await withNats(async (nc, o) => {
      const report = await topologyReport(nc, opts.hosts);
      print(o.json, report, renderTopology);
    });
  });

/** `--at`, `--from`, `--to`: a revision, an ISO 8601 time or a relative time. */
const point = (v: string): Point => {
  try {
    return parsePoint(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};
const positive = (v: string): number => {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('a whole number ≥ 1');
  return Number(v);
};
const portNumber = (v: string): number => {
  if (!/^\d+$/.test(v) || Number(v) > 65535)
    throw new InvalidArgumentError('a port from 0 to 65535');
  return Number(v);
};

program
  .command('status')
  .description("a VPC's revision and size, its decisions by outcome, what still waits for hosts")
  .argument('<vpc>', 'VPC id')
  .action(async (vpcId: string) => {
    await withNats(async (nc, o) => {
      const report = await vpcStatus(nc, vpcId);
      print(o.json, report, renderVpcStatus);
      if (report.intents.incomplete > 0) process.exitCode = EXIT.incomplete;
    });
  });

program
  .command('watch')
  .description(
    "a VPC's statuses as they come (accepted, rejected, programmed, incomplete); Ctrl-C stops",
  )
  .argument('<vpc>', 'VPC id')
  .addOption(new Option('--count <n>', 'stop after n statuses').argParser(positive))
  .addOption(new Option('--for <ms>', 'stop after this many milliseconds').argParser(positive))
  .action(async (vpcId: string, opts: { count?: number; for?: number }) => {
    await withNats(async (nc, o) => {
      await watchVpc(nc, vpcId, {
        json: o.json,
        ...(opts.count === undefined ? {} : { count: opts.count }),
        ...(opts.for === undefined ? {} : { forMs: opts.for }),
        onReady: () => process.stderr.write(`watching status.${vpcId} (Ctrl-C to stop)\n`),
      });
    });
  });

const vpcCommand = program.command('vpc').description('a VPC as the log records it');
vpcCommand
  .command('list')
  .description('every VPC in EVENTS: its revision, commits and when it last decided')
  .option('--prefix <text>', 'only the VPCs whose id starts with it')
  .action(async (opts: { prefix?: string }) => {
    await withNats(async (nc, o) => {
      print(o.json, await vpcList(nc, opts.prefix), (r) => renderVpcList(r));
    });
  });
vpcCommand
  .command('show')
  .description("the VPC's state rebuilt from EVENTS, now or as of a revision or time")
  .argument('<vpc>', 'VPC id')
  .addOption(
    new Option('--at <revision|time>', 'a revision, an ISO 8601 time, or -10m').argParser(point),
  )
  .action(async (vpcId: string, opts: { at?: Point }) => {
    await withNats(async (nc, o) => {
      print(o.json, await vpcShow(nc, vpcId, opts.at), renderVpc);
    });
  });

const replay = program.command('replay').description('timelines from the logs');
replay
  .command('vpc')
  .description('each intent of the VPC, its decision, and the goal states it produced')
  .argument('<vpc>', 'VPC id')
  .addOption(new Option('--from <revision|time>', 'start at').argParser(point))
  .addOption(new Option('--to <revision|time>', 'end at (inclusive)').argParser(point))
  .action(async (vpcId: string, opts: { from?: Point; to?: Point }) => {
    await withNats(async (nc, o) => {
      print(o.json, await replayVpc(nc, vpcId, opts.from, opts.to), renderTimeline);
    });
  });
replay
  .command('host')
  .description('what the host was sent and when (GOALSTATES), and its acks (ACKS)')
  .argument('<host>', 'host id')
  .addOption(new Option('--from <time>', 'start at (ISO 8601 or -10m)').argParser(point))
  .addOption(new Option('--to <time>', 'end at (inclusive)').argParser(point))
  .action(async (hostId: string, opts: { from?: Point; to?: Point }) => {
    await withNats(async (nc, o) => {
      print(o.json, await replayHost(nc, hostId, opts.from, opts.to), renderHostTimeline);
    });
  });

program
  .command('trace')
  .description('intent → decision → goal states → acks per host, with the time of each stage')
  .argument('<intent>', 'intent id')
  .option('--vpc <vpc>', 'the VPC (faster: only its logs are read)')
  .action(async (intentId: string, opts: { vpc?: string }) => {
    await withNats(async (nc, o) => {
      print(o.json, await trace(nc, intentId, opts.vpc), renderTrace);
    });
  });

program
  .command('hosts')
  .description(
    'the fleet in sync: per host and VPC the revision applied vs the latest, lag, last ack; SYNCED, STALE, FAILED or UNKNOWN (exit 4 unless all synced)',
  )
  .option('--vpc <vpc>', 'only this VPC')
  .option('--host <host>', 'only this host (one row per VPC)')
  .option('--stale', 'only the hosts that are not SYNCED', false)
  .action(async (opts: { vpc?: string; host?: string; stale: boolean }) => {
    await withNats(async (nc, o) => {
      const report = await hostsReport(nc, {
        ...(opts.vpc ? { vpcId: opts.vpc } : {}),
        ...(opts.host ? { hostId: opts.host } : {}),
        staleOnly: opts.stale,
      });
      print(o.json, report, (r) => renderHosts(r));
      const { STALE, FAILED, UNKNOWN } = report.counts;
      if (STALE + FAILED + UNKNOWN > 0) process.exitCode = EXIT.incomplete;
    });
  });

program
  .command('check')
  .description('the convergence oracle: every host holds exactly what EVENTS says (exit 4 if not)')
  .option('--vpc <vpc>', 'only this VPC')
  .option('--host <host>', 'only this host')
  .option('--full', 'fold every VPC from revision 0 instead of from its snapshot', false)
  .action(async (opts: { vpc?: string; host?: string; full: boolean }) => {
    await withNats(async (nc, o) => {
      const report = await check(nc, {
        ...(opts.vpc ? { vpcId: opts.vpc } : {}),
        ...(opts.host ? { hostId: opts.host } : {}),
        full: opts.full,
      });
      print(o.json, report, renderCheck);
      if (!report.clean) process.exitCode = EXIT.incomplete;
    });
  });

const context = program
  .command('context')
  .description('saved connections (address, credentials, CA), chosen by name as nats context does');
context
  .command('add')
  .description(
    'save the connection flags given (--nats-url, --nkey or --creds, --tlsca) under a name',
  )
  .argument('<name>', 'context name')
  .option('--description <text>', 'what it is for')
  .option('--select', 'also select it for every command', false)
  .action((name: string, opts: { description?: string; select: boolean }) => {
    const f = program.opts<GlobalFlags>();
    if (!f.natsUrl) throw new CliError('context add needs --nats-url', EXIT.usage);
    if (f.nkey && f.creds)
      throw new CliError('--nkey and --creds are two ways to log in: give one', EXIT.usage);
    const file = saveContext(name, {
      url: f.natsUrl,
      ...(opts.description ? { description: opts.description } : {}),
      ...(f.nkey ? { nkey: f.nkey } : {}),
      ...(f.creds ? { creds: f.creds } : {}),
      ...(f.tlsca ? { ca: f.tlsca } : {}),
    });
    if (opts.select) selectContext(name);
    print(
      globals().json,
      { name, file, selected: opts.select },
      (r) => `context ${r.name} saved in ${r.file}${r.selected ? '; selected' : ''}`,
    );
  });
context
  .command('use')
  .description('select a context for every command (flags, --context and NATS_URL still win)')
  .argument('<name>', 'context name')
  .action((name: string) => {
    selectContext(name);
    process.stdout.write(`context ${name} selected\n`);
  });
context
  .command('ls')
  .description('the saved contexts; * marks the selected one')
  .action(() => {
    print(globals().json, listContexts(), renderContexts);
  });
context
  .command('show')
  .description('the connection a command would use now, and where each part came from')
  .action(() => {
    print(globals().json, connection(), renderConnection);
  });
context
  .command('rm')
  .description('delete a context')
  .argument('<name>', 'context name')
  .action((name: string) => {
    removeContext(name);
    process.stdout.write(`context ${name} deleted\n`);
  });

program
  .command('nats-config')
  .description(
    'write the NATS server configuration this system needs (JetStream, the intent mapping, accounts and users) for a server of your own',
  )
  .requiredOption('--out <dir>', 'directory for nats.conf (and credentials/)')
  .option('--no-auth', 'no accounts or users (any client may connect)')
  .option('--hosts <file>', 'a topology file: each host gets a user of its own')
  .option('--listen <host>', 'address to listen on', '0.0.0.0')
  .option('--port <n>', 'client port', portNumber, 4222)
  .option('--monitor-port <n>', 'HTTP monitoring port (0: none)', portNumber, 8222)
  .option('--store-dir <dir>', 'JetStream storage', '/var/lib/nats/jetstream')
  .option('--server-name <name>', 'server name', 'alcor-nats')
  .option(
    '--bucket-count <n>',
    'buckets of the intent mapping (ALCOR_BUCKET_COUNT)',
    positive,
    1024,
  )
  .option('--max-payload <bytes>', 'max_payload (default 8 MiB)', positive)
  .option('--tls-cert <file>', "TLS on the client port: the server's certificate (PEM)")
  .option('--tls-key <file>', 'and its key (PEM)')
  .action(
    async ({
      out,
      auth,
      hosts,
      listen,
      tlsCert,
      tlsKey,
      ...server
    }: Omit<NatsServerSettings, 'host'> & {
      out: string;
      auth: boolean;
      hosts?: string;
      listen: string;
      tlsCert?: string;
      tlsKey?: string;
    }) => {
      if ((tlsCert === undefined) !== (tlsKey === undefined))
        throw new CliError('--tls-cert and --tls-key go together', EXIT.usage);
      const report = await writeNatsConfig({
        out,
        auth,
        ...(hosts ? { hostsFile: hosts } : {}),
        server: {
          ...server,
          host: listen,
          ...(tlsCert && tlsKey ? { tls: { certFile: tlsCert, keyFile: tlsKey } } : {}),
        },
      });
      print(globals().json, report, renderNatsConfigReport);
    },
  );

program
  .command('kafka-config')
  .description(
    "write the settings of a single-node KRaft Kafka cluster of your own (SASL users per role, the authorizer) and its users' password files",
  )
  .requiredOption('--cluster <id>', 'the cluster id of KAFKA_CLUSTERS (e.g. a)')
  .requiredOption('--out <dir>', 'directory for server.properties and the password files')
  .requiredOption('--advertise <host:port>', 'where clients reach the broker')
  .option('--listen <host>', 'address to listen on', '0.0.0.0')
  .option('--port <n>', 'client port', portNumber, 9092)
  .option('--controller-port <n>', 'KRaft controller port', portNumber, 9093)
  .option('--data-dir <dir>', 'log.dirs', '/var/lib/kafka/data')
  .option('--no-sasl', 'PLAINTEXT: no users, no ACLs (anyone who reaches the port may)')
  .option('--message-max-bytes <bytes>', "message.max.bytes (default: Kafka's)", positive)
  .option(
    '--tls-key-and-cert <file>',
    "TLS on the listeners: the broker's key and certificate in one PEM file",
  )
  .option('--tls-ca <file>', 'and the CA that signed it (PEM)')
  .action((opts: Omit<KafkaConfigOptions, 'advertise'> & { advertise: string }) => {
    print(globals().json, writeKafkaConfig(opts), renderKafkaConfigReport);
  });

program
  .command('kafka-acls')
  .description(
    "write the roles' ACLs (southbound, nca) into a Kafka cluster, as its admin (KAFKA_<ID>_SASL_USERNAME, KAFKA_<ID>_SASL_PASSWORD[_FILE])",
  )
  .requiredOption('--cluster <id>', 'the cluster id (names the admin variables)')
  .requiredOption('--brokers <list>', 'host:port of its brokers, separated by commas')
  .option('--wait-ms <ms>', 'how long to wait for the broker to answer', positive, 60_000)
  .action(async (opts: { cluster: string; brokers: string; waitMs: number }) => {
    const report = await writeKafkaAcls(
      opts.cluster,
      opts.brokers.split(',').map((b) => b.trim()),
      opts.waitMs,
    );
    print(globals().json, report, renderKafkaAclsReport);
  });

program
  .command('tls-config')
  .description(
    'make a certificate authority and one server certificate signed by it, for the servers of a deployment (every client verifies them with ca.crt)',
  )
  .requiredOption('--out <dir>', 'directory for ca.crt, server.crt, server.key, server.pem')
  .requiredOption(
    '--names <list>',
    "the servers' DNS names and IPv4 addresses, separated by commas",
  )
  .action(async (opts: { out: string; names: string }) => {
    print(
      globals().json,
      await writeTlsConfig(
        opts.out,
        opts.names.split(',').map((n) => n.trim()),
      ),
      renderTlsConfigReport,
    );
  });

program
  .command('redis-config')
  .description(
    'write the ACL file of a Redis of your own (the default user off, one user allowed only the host mapping) and its password file',
  )
  .requiredOption('--out <dir>', 'directory for users.acl and the password file')
  .option('--username <name>', "the services' user", 'alcor')
  .action((opts: { out: string; username: string }) => {
    print(globals().json, writeRedisConfig(opts.out, opts.username), renderRedisConfigReport);
  });

program
  .command('completion')
  .description('a completion script for bash or zsh, made from these commands')
  .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh']))
  .action((shell: 'bash' | 'zsh') => {
    process.stdout.write(completionScript(program, shell));
  });

addExamples(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else if (err instanceof ConfigError) {
    // A setting from the environment (e.g. KAFKA_<ID>_SASL_PASSWORD_FILE unreadable).
    process.stderr.write(`alcor: ${err.message}\n`);
    process.exitCode = EXIT.usage;
  } else if (err instanceof CliError) {
    process.stderr.write(`alcor: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else {
    // Not foreseen: one line still; the stack on request.
    const e = err as Error;
    process.stderr.write(
      process.env.ALCOR_DEBUG
        ? `alcor: ${e.stack ?? String(err)}\n`
        : `alcor: ${e.name ?? 'Error'}: ${e.message ?? String(err)} (ALCOR_DEBUG=1 shows where)\n`,
    );
    process.exitCode = EXIT.failure;
  }
  // Said and done: a connection attempt still pending underneath (a server that
  // never answers keeps its socket for the OS's own timeout) must not hold the
  // process. Exit once stdout has drained.
  process.stdout.write('', () => process.exit());
}
