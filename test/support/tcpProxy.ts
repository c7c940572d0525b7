/**
 * A TCP proxy for fault tests: a process connects through it instead of straight
 * to a server, and the test cuts or slows the link.
 *
 * - `cut()`: a network partition. Nothing crosses in either direction and new
 *   connections hang unanswered (no reset: the peers learn of it only from their
 *   own timeouts, as on a real cut); what was sent meanwhile waits. `heal()` lets
 *   it all through again, as TCP retransmission would after a short partition.
 * - `reset()`: every connection is closed at once (a peer that restarted).
 * - `delay(ms)`: each chunk is held this long each way (a slow link or peer).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** `host:port` to connect to instead of the target. */
  address: string;
  port: number;
  cut: () => void;
  heal: () => void;
  reset: () => void;
  delay: (ms: number) => void;
  /** Connections open through the proxy now. */
  connections: () => number;
  close: () => Promise<void>;
}

type Direction = 'client' | 'server';

interface Pipe {
  client: Socket;
  server: Socket | undefined;
  /** Chunks on their way, in order, per direction, each due at a time (delay) or held (cut). */
  queue: Record<Direction, Array<{ due: number; chunk: Buffer }>>;
  timer: Record<Direction, NodeJS.Timeout | undefined>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let isCut = false;
  let delayMs = 0;
  const pipes = new Set<Pipe>();
  /** Connections accepted while cut: they reach the target only once healed. */
  const waiting: Pipe[] = [];

  /** Writes what is due, in order; waits for the rest. Nothing moves while cut. */
  const drain = (pipe: Pipe, to: Direction): void => {
    const socket = to === 'client' ? pipe.client : pipe.server;
    if (isCut || !socket || socket.destroyed || pipe.timer[to]) return;
    const queue = pipe.queue[to];
    const now = Date.now();
    while (queue.length > 0 && queue[0]!.due <= now) socket.write(queue.shift()!.chunk);
    if (queue.length > 0) {
      pipe.timer[to] = setTimeout(() => {
        pipe.timer[to] = undefined;
        drain(pipe, to);
      }, queue[0]!.due - now);
      pipe.timer[to].unref();
    }
  };

  const deliver = (pipe: Pipe, to: Direction, chunk: Buffer): void => {
    const queue = pipe.queue[to];
    const due = Math.max(Date.now() + delayMs, queue.at(-1)?.due ?? 0);
    queue.push({ due, chunk });
    drain(pipe, to);
  };

  const end = (pipe: Pipe): void => {
    if (!pipes.delete(pipe)) return;
    for (const to of ['client', 'server'] as const) clearTimeout(pipe.timer[to]);
    pipe.client.destroy();
    pipe.server?.destroy();
  };

  const open = (pipe: Pipe): void => {
    const server = connect(target);
    pipe.server = server;
    server.setNoDelay(true);
    server.on('data', (chunk: Buffer) => deliver(pipe, 'client', chunk));
    server.on('error', () => end(pipe));
    server.on('close', () => end(pipe));
    // Bytes the client sent before the upstream connection existed.
    drain(pipe, 'server');
  };

  const server: Server = createServer((client) => {
    client.setNoDelay(true);
    const pipe: Pipe = {
      client,
      server: undefined,
      queue: { client: [], server: [] },
      timer: { client: undefined, server: undefined },
    };
    pipes.add(pipe);
    client.on('data', (chunk: Buffer) => deliver(pipe, 'server', chunk));
    client.on('error', () => end(pipe));
    client.on('close', () => end(pipe));
    if (isCut) waiting.push(pipe);
    else open(pipe);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;

  return {
    address: `127.0.0.1:${port}`,
    port,
    cut: () => {
      isCut = true;
    },
    heal: () => {
      isCut = false;
      for (const pipe of waiting.splice(0)) if (pipes.has(pipe)) open(pipe);
      for (const pipe of pipes) {
        drain(pipe, 'client');
        drain(pipe, 'server');
      }
    },
    reset: () => {
      for (const pipe of [...pipes]) end(pipe);
    },
    delay: (ms) => {
      delayMs = ms;
    },
    connections: () => pipes.size,
    close: async () => {
      for (const pipe of [...pipes]) end(pipe);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
