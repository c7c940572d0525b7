import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Ports the OS gives to outgoing connections (`ip_local_port_range`). A port it
 * picked for us out of that range can be taken by any client's connection before
 * our server binds it ("address already in use": a test's nats-server lost its
 * port that way). Ours are picked below that range, where no outgoing connection
 * lands, and checked free by binding them.
 */
function ephemeralStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/);
    const n = Number(low);
    return Number.isInteger(n) && n > 2048 ? n : 32768;
  } catch {
    return 32768;
  }
}

const LOWEST = 10_000;
/** Handed out by this process: not given twice, even before the first is bound. */
const given = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A TCP port free on 127.0.0.1 a moment ago, outside the OS's range for outgoing connections. */
export async function freePort(): Promise<number> {
  const high = ephemeralStart();
  if (high - LOWEST > 1000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = LOWEST + Math.floor(Math.random() * (high - LOWEST));
      if (given.has(port)) continue;
      if (await bindable(port)) {
        given.add(port);
        return port;
      }
    }
  }
  // A machine whose outgoing range leaves no room below it: the OS picks.
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
