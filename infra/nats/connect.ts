import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { ServerUnavailableError } from '../../shared/index.js';

export interface NatsConnectOptions {
  name: string;
  timeoutMs?: number;
  /** Keep reconnecting forever (services) or fail fast (probes, CLI). */
  reconnect?: boolean;
  user?: string;
  pass?: string;
  /**
   * Build each request's error (with the caller's stack) up front. Off by default:
   * it cost about 9 % of a southbound run's CPU (profiled); turn on to debug.
   */
  asyncTraces?: boolean;
}

/** Connects to NATS; a clear error naming the server and URL when it cannot. */
export async function connectNats(
  url: string,
  options: NatsConnectOptions,
): Promise<NatsConnection> {
  try {
    return await connect({
      servers: url.split(','),
      name: options.name,
      timeout: options.timeoutMs ?? 5000,
      reconnect: options.reconnect ?? true,
      maxReconnectAttempts: options.reconnect === false ? 0 : -1,
      noAsyncTraces: options.asyncTraces !== true,
      ...(options.user === undefined ? {} : { user: options.user, pass: options.pass ?? '' }),
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
