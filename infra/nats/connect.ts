import { existsSync, readFileSync } from 'node:fs';
import {
  connect,
  credsAuthenticator,
  type Authenticator,
  type NatsConnection,
} from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { ConfigError, ServerUnavailableError } from '../../shared/index.js';
import { nkeySeedAuthenticator } from './nkeyAuth.js';

export interface NatsConnectOptions {
  name: string;
  timeoutMs?: number;
  /** Keep reconnecting forever (services) or fail fast (probes, CLI). */
  reconnect?: boolean;
  /**
   * The nkey seed file of this connection's user (infra/nats/auth.ts). Defaults to
   * NATS_NKEY_SEED_FILE from the environment; neither means no credentials.
   */
  nkeySeedFile?: string;
  /**
   * A `.creds` file (a user JWT and its seed: a server run in operator/JWT mode).
   * Defaults to NATS_CREDS; it takes the place of an nkey seed.
   */
  credsFile?: string;
  /** Reply subjects under this prefix (an NCA host may read only its own inbox). */
  inboxPrefix?: string;
  /**
   * The CA a `tls://` server's certificate is verified with. Defaults to
   * NATS_CA_FILE; neither means the system's CAs. A `nats://` URL is plain text.
   */
  caFile?: string;
  /**
   * Build each request's error (with the caller's stack) up front. Off by default:
   * it cost about 9 % of a southbound run's CPU (profiled); turn on to debug.
   */
  asyncTraces?: boolean;
  /**
   * Reconnects are spread at random over this long (default: the client's, 100 ms,
   * 1 s with TLS). A process holding many connections (an NCA fleet, one per host)
   * spreads them wider, or their TLS handshakes time out against each other.
   */
  reconnectSpreadMs?: number;
}

/** Connects to NATS; a clear error naming the server and URL when it cannot. */
export async function connectNats(
  url: string,
  options: NatsConnectOptions,
): Promise<NatsConnection> {
  const read = (file: string, variable: string): Uint8Array => {
    try {
      return new Uint8Array(readFileSync(file));
    } catch (err) {
      throw new ConfigError(variable, `cannot read ${file}: ${(err as Error).message}`);
    }
  };
  const credsFile = options.credsFile ?? process.env.NATS_CREDS;
  const seedFile = options.nkeySeedFile ?? process.env.NATS_NKEY_SEED_FILE;
  const authenticator: Authenticator | undefined = credsFile
    ? credsAuthenticator(read(credsFile, 'NATS_CREDS'))
    : seedFile
      ? nkeySeedAuthenticator(read(seedFile, 'NATS_NKEY_SEED_FILE'))
      : undefined;
  // TLS is asked for by the URL (`tls://`): the client then refuses a server
  // without it and verifies the server's certificate and name.
  const tls = url.split(',').every((u) => u.trim().startsWith('tls://'));
  if (!tls && url.includes('tls://'))
    throw new ConfigError('NATS_URL', 'mixes tls:// and plain URLs: use one scheme for all');
  const caFile = options.caFile ?? process.env.NATS_CA_FILE;
  if (tls && caFile && !existsSync(caFile))
    throw new ConfigError('NATS_CA_FILE', `${caFile} does not exist`);
  try {
    return await connect({
      servers: url.split(','),
      ...(tls ? { tls: caFile ? { caFile } : {} } : {}),
      name: options.name,
      timeout: options.timeoutMs ?? 5000,
      reconnect: options.reconnect ?? true,
      maxReconnectAttempts: options.reconnect === false ? 0 : -1,
      noAsyncTraces: options.asyncTraces !== true,
      ...(options.reconnectSpreadMs === undefined
        ? {}
        : {
            reconnectJitter: options.reconnectSpreadMs,
            reconnectJitterTLS: options.reconnectSpreadMs,
          }),
      ...(authenticator === undefined ? {} : { authenticator }),
      ...(options.inboxPrefix === undefined ? {} : { inboxPrefix: options.inboxPrefix }),
    });
  } catch (err) {
    throw new ServerUnavailableError(
      'nats',
      `cannot connect to ${url}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Connects, checks JetStream is enabled, and returns the server's version. */
export async function probeNats(url: string, timeoutMs = 5000): Promise<string> {
  const nc = await connectNats(url, { name: 'alcor-probe', timeoutMs, reconnect: false });
  try {
    const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
    await jsm.getAccountInfo();
    return nc.info?.version ?? 'unknown';
  } catch (err) {
    throw new ServerUnavailableError(
      'nats',
      `${url} has no usable JetStream: ${(err as Error).message}`,
      { cause: err },
    );
  } finally {
    await nc.close();
  }
}

/** A live view of whether `nc` is connected now (for /readyz): false between a disconnect and the reconnect. */
export function natsConnectedFlag(nc: NatsConnection): () => boolean {
  let connected = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') connected = false;
      else if (s.type === 'reconnect') connected = true;
    }
  })();
  return () => connected && !nc.isClosed();
}
