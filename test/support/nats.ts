import { suite, type Test } from 'uvu';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, ensureLayout } from '../../infra/index.js';
import { testServers } from './servers.js';

export interface NatsContext {
  nc: NatsConnection;
  jsm: JetStreamManager;
}

/**
 * A suite with a NATS connection to the test server and the stream layout declared.
 * Add more `before` hooks for what the suite builds on it.
 */
export function natsSuite<Extra extends object = object>(title: string): Test<NatsContext & Extra> {
  const s = suite<NatsContext & Extra>(title);
  s.before(async (ctx) => {
    const { natsUrl } = await testServers();
    ctx.nc = await connectNats(natsUrl, { name: title, reconnect: false });
    ctx.jsm = await jetstreamManager(ctx.nc);
    await ensureLayout(ctx.nc, ctx.jsm);
  });
  s.after(async (ctx) => {
    await ctx.nc.close();
  });
  return s;
}
