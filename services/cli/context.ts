/**
 * Contexts, as `nats context` keeps them: a named NATS address with the
 * credentials and CA to reach it, saved once and chosen by name (`--context`) or
 * selected for every command (`alcor context use`). Files live in
 * `$ALCOR_CONFIG_DIR` (default `$XDG_CONFIG_HOME/alcor`, else `~/.config/alcor`):
 * `context/<name>.json`, and the selected name in `context.txt`.
 *
 * Which connection a command uses, first match wins, field by field:
 * 1. the flags: --nats-url, --nkey, --creds, --tlsca;
 * 2. the context named by --context (or ALCOR_CONTEXT);
 * 3. the environment: NATS_URL, NATS_NKEY_SEED_FILE, NATS_CREDS, NATS_CA_FILE;
 * 4. the selected context;
 * 5. nats://127.0.0.1:4222, no credentials.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ID_PATTERN, isId } from '../../shared/index.js';
import { CliError, EXIT, table } from './output.js';

export interface NatsContext {
  description?: string;
  url: string;
  /** An nkey seed file (the users of `alcor nats-config`). */
  nkey?: string;
  /** A `.creds` file (a server in JWT mode). */
  creds?: string;
  /** The CA that signed a `tls://` server's certificate. */
  ca?: string;
}

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.ALCOR_CONFIG_DIR ?? join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'alcor');
}

const contextFile = (dir: string, name: string): string => join(dir, 'context', `${name}.json`);
const selectedFile = (dir: string): string => join(dir, 'context.txt');

function checkName(name: string): void {
  if (!ID_PATTERN.test(name))
    throw new CliError(
      `context name ${JSON.stringify(name.slice(0, 80))} must match ^[A-Za-z0-9_-]{1,64}$`,
      EXIT.usage,
    );
}

export function loadContext(name: string, dir = configDir()): NatsContext {
  checkName(name);
  const file = contextFile(dir, name);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new CliError(
      `no context ${name} in ${join(dir, 'context')} (alcor context ls; alcor context add ${name} --nats-url …)`,
      EXIT.notFound,
    );
  }
  try {
    const value = JSON.parse(text) as NatsContext;
    if (typeof value.url !== 'string') throw new Error('no url');
    return value;
  } catch (err) {
    throw new CliError(`context file ${file} is not a context: ${(err as Error).message}`);
  }
}

/** Saves a context; the files it names are kept as absolute paths. */
export function saveContext(name: string, context: NatsContext, dir = configDir()): string {
  checkName(name);
  const abs = (f?: string): string | undefined => (f === undefined ? undefined : resolve(f));
  for (const [flag, file] of [
    ['--nkey', context.nkey],
    ['--creds', context.creds],
    ['--tlsca', context.ca],
  ] as const)
    if (file !== undefined && !existsSync(file))
      throw new CliError(`${flag} ${file}: no such file`, EXIT.usage);
  const file = contextFile(dir, name);
  mkdirSync(join(dir, 'context'), { recursive: true, mode: 0o700 });
  const saved: NatsContext = {
    ...(context.description ? { description: context.description } : {}),
    url: context.url,
    ...(context.nkey ? { nkey: abs(context.nkey) } : {}),
    ...(context.creds ? { creds: abs(context.creds) } : {}),
    ...(context.ca ? { ca: abs(context.ca) } : {}),
  };
  writeFileSync(file, `${JSON.stringify(saved, null, 2)}\n`, { mode: 0o600 });
  return file;
}

export function selectedContext(dir = configDir()): string | undefined {
  try {
    const name = readFileSync(selectedFile(dir), 'utf8').trim();
    return name === '' ? undefined : name;
  } catch {
    return undefined;
  }
}

export function selectContext(name: string, dir = configDir()): void {
  loadContext(name, dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(selectedFile(dir), `${name}\n`);
}

export function removeContext(name: string, dir = configDir()): void {
  loadContext(name, dir);
  rmSync(contextFile(dir, name));
  if (selectedContext(dir) === name) rmSync(selectedFile(dir), { force: true });
}

export interface ContextList {
  dir: string;
  selected?: string;
  contexts: Array<NatsContext & { name: string; selected: boolean }>;
}

export function listContexts(dir = configDir()): ContextList {
  const selected = selectedContext(dir);
  const names = existsSync(join(dir, 'context'))
    ? readdirSync(join(dir, 'context'))
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -5))
        .filter(isId)
        .sort()
    : [];
  return {
    dir,
    ...(selected ? { selected } : {}),
    contexts: names.map((name) => ({
      name,
      selected: name === selected,
      ...loadContext(name, dir),
    })),
  };
}

export function renderContexts(r: ContextList): string {
  if (r.contexts.length === 0)
    return `no contexts in ${join(r.dir, 'context')} (alcor context add <name> --nats-url …)`;
  return table(
    ['NAME', 'URL', 'AUTH', 'TLS CA', 'DESCRIPTION'],
    r.contexts.map((c) => [
      `${c.name}${c.selected ? ' *' : ''}`,
      c.url,
      c.creds ? `creds ${c.creds}` : c.nkey ? `nkey ${c.nkey}` : '-',
      c.ca ?? '-',
      c.description ?? '',
    ]),
  );
}

/** The connection a command uses, each field with where it came from. */
export interface ResolvedConnection {
  url: string;
  nkey?: string;
  creds?: string;
  ca?: string;
  /** `flag`, `context <name>`, `environment`, `default`. */
  from: Record<'url' | 'auth' | 'ca', string>;
}

export function resolveConnection(
  flags: { natsUrl?: string; nkey?: string; creds?: string; tlsca?: string; context?: string },
  env: NodeJS.ProcessEnv = process.env,
  dir = configDir(env),
): ResolvedConnection {
  if (flags.nkey && flags.creds)
    throw new CliError('--nkey and --creds are two ways to log in: give one', EXIT.usage);
  const named = flags.context ?? env.ALCOR_CONTEXT;
  const selectedName = named ? undefined : selectedContext(dir);
  const given = (c: {
    url?: string | undefined;
    nkey?: string | undefined;
    creds?: string | undefined;
    ca?: string | undefined;
  }): Partial<NatsContext> => ({
    ...(c.url ? { url: c.url } : {}),
    ...(c.nkey ? { nkey: c.nkey } : {}),
    ...(c.creds ? { creds: c.creds } : {}),
    ...(c.ca ? { ca: c.ca } : {}),
  });
  // In order of precedence; each part comes from the first layer that has it.
  const layers: Array<[string, Partial<NatsContext> | undefined]> = [
    ['flag', given({ ...flags, url: flags.natsUrl, ca: flags.tlsca })],
    [`context ${named}`, named ? loadContext(named, dir) : undefined],
    [
      'environment',
      given({
        url: env.NATS_URL,
        nkey: env.NATS_NKEY_SEED_FILE,
        creds: env.NATS_CREDS,
        ca: env.NATS_CA_FILE,
      }),
    ],
    [
      `context ${selectedName} (selected)`,
      selectedName ? loadContext(selectedName, dir) : undefined,
    ],
  ];
  const first = (has: (c: Partial<NatsContext>) => unknown) =>
    layers.find(([, c]) => c && has(c)) as [string, Partial<NatsContext>] | undefined;
  const url = first((c) => c.url);
  const auth = first((c) => c.nkey ?? c.creds);
  const ca = first((c) => c.ca);
  return {
    url: url?.[1].url ?? DEFAULT_NATS_URL,
    ...(auth?.[1].creds ? { creds: auth[1].creds } : auth ? { nkey: auth[1].nkey! } : {}),
    ...(ca ? { ca: ca[1].ca! } : {}),
    from: { url: url?.[0] ?? 'default', auth: auth?.[0] ?? 'none', ca: ca?.[0] ?? 'none' },
  };
}

export function renderConnection(c: ResolvedConnection): string {
  return [
    `url   ${c.url}  (${c.from.url})`,
    `auth  ${c.creds ? `creds ${c.creds}` : c.nkey ? `nkey ${c.nkey}` : 'none'}  (${c.from.auth})`,
    `ca    ${c.ca ?? '-'}  (${c.from.ca})`,
  ].join('\n');
}
