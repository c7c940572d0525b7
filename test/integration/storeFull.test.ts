/**
 * A nats-server whose JetStream store is full (its `max_file_store` reached,
 * another stream took the space): the sync API refuses an intent with a clear
 * error, the VPC is not wedged, and the same intent is taken once space is freed.
 * The fault suite's `fill-jetstream-store` does the same under load.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { subjects, type ApplyReplyItem } from '../../shared/index.js';
import {
  eventually,
  isolatedNats,
  readCommits,
  startTestController,
  type IsolatedNats,
} from '../support/index.js';
import type { Controller } from '../../services/controller/index.js';
import { fillJetStream, freeJetStream } from '../support/storeFill.js';

const LIMIT = 64 * 1024 * 1024;
const VPC = 'store-full';

const Full = suite('JetStream store full');

Full('an intent refused while the store is full, with why; taken once space is freed', async () => {
  let server: IsolatedNats | undefined;
  let controller: Controller | undefined;
  try {
    server = await isolatedNats({}, { maxFileStore: LIMIT });
    controller = await startTestController(server.url);
    const nc = server.nc;
    const apply = async (intent: Record<string, unknown>): Promise<ApplyReplyItem> =>
      (
        await nc.request(subjects.applyIntents, JSON.stringify({ ...intent, vpcId: VPC }), {
          timeout: 30_000,
        })
      ).json<ApplyReplyItem>();
    const subnet = {
      id: 'sub-1',
      kind: 'subnet.create',
      spec: { subnetId: 's1', cidr: '10.0.1.0/24', gatewayIp: '10.0.1.1' },
    };

    // Positive control: with room, an intent is taken.
    const created = await apply({
      id: 'create',
      kind: 'vpc.create',
      spec: { cidr: '10.0.0.0/16' },
    });
    assert.is(created.outcome, 'accepted', JSON.stringify(created));

    const written = await fillJetStream(nc, LIMIT);
    assert.ok(written > 0);
    const refused = await apply(subnet);
    if (refused.outcome !== 'rejected') assert.unreachable(JSON.stringify(refused));
    else {
      assert.is(refused.error.code, 'unavailable');
      assert.match(refused.error.message, /storage is full.*safe to send again with the same id/);
    }

    await freeJetStream(nc);
    // The same intent again: taken (the controller's own writes were refused too
    // meanwhile; it carries on once they go through).
    const taken = await eventually(
      async () => {
        const r = await apply(subnet);
        return r.outcome === 'accepted' ? r : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'the intent taken once space is freed' },
    );
    assert.is(taken.id, 'sub-1');
    assert.equal(
      (await readCommits(nc, VPC)).map((c) => c.commit.intentId),
      ['create', 'sub-1'],
      'EVENTS holds both, once each',
    );
  } finally {
    await controller?.stop();
    await server?.stop();
  }
});

Full.run();
