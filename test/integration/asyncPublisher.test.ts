/**
 * The JetStream publisher's window (infra/nats/asyncPublisher.ts) against a real
 * nats-server whose streams' ingest queue is small (max_buffered_msgs 64): a
 * publisher without a window outruns it and has publishes refused (429) while
 * later ones are stored — the way a host's deltas came out of order; with a window
 * under the queue, nothing is refused and the stream holds the publishes in order.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { PublishRejectedError } from '../../infra/index.js';
import { createAsyncPublisher } from '../../infra/index.js';
import { isolatedNats, type IsolatedNats } from '../support/controller.js';
import { readStream } from '../support/workload.js';

const test = suite<{ server: IsolatedNats }>('the JetStream publisher keeps under the server');
const COUNT = 4_000;
const body = new Uint8Array(2048).fill(120);

test.before(async (ctx) => {
  ctx.server = await isolatedNats({}, { streamMaxBufferedMsgs: 64 });
});
test.after(async (ctx) => {
  await ctx.server?.stop();
});

/** Publishes COUNT messages at once on `stream`; the refusals, by JetStream code. */
async function burst(ctx: { server: IsolatedNats }, stream: string, window?: number) {
  await ctx.server.jsm.streams.add({
    name: stream,
    subjects: [`${stream.toLowerCase()}.>`],
    allow_direct: true, // read back as the system reads its own streams
  });
  const publisher = createAsyncPublisher(ctx.server.nc, {
    maxInFlight: window ?? Number.MAX_SAFE_INTEGER,
    maxInFlightBytes: Number.MAX_SAFE_INTEGER,
  });
  const settled = await Promise.allSettled(
    Array.from({ length: COUNT }, (_, i) =>
      publisher.publish(`${stream.toLowerCase()}.m`, body, { msgId: `m${i}` }),
    ),
  );
  publisher.close();
  const refused = settled.flatMap((s) =>
    s.status === 'rejected' ? [(s.reason as PublishRejectedError).errCode] : [],
  );
  return { refused, stored: await readStream(ctx.server.nc, stream) };
}

test('without a window a burst outruns the stream: some publishes are refused (429)', async (ctx) => {
  const { refused, stored } = await burst(ctx, 'NOWINDOW');
  assert.ok(refused.length > 0, 'the server refused some');
  assert.ok(
    refused.every((code) => code === 10167 || code === 429),
    `refused with: ${[...new Set(refused)].join(', ')}`,
  );
  assert.is(stored.length, COUNT - refused.length);
});

test('with a window under the queue: nothing refused, everything stored in order', async (ctx) => {
  const { refused, stored } = await burst(ctx, 'WINDOW', 32);
  assert.equal(refused, []);
  assert.equal(
    stored.map((m) => m.msgId),
    Array.from({ length: COUNT }, (_, i) => `m${i}`),
  );
});

test.run();
