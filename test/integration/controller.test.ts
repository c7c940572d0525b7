/**
 * The controller against a real nats-server (issue 4): load from several
 * connections, one or two instances, judged by the pure decider replayed over
 * the same INTENTS. Each test has a nats-server of its own (see support/controller).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { putHosts } from '../../infra/index.js';
import { streams } from '../../shared/index.js';
import type { Controller } from '../../services/controller/index.js';
import {
  clientConnections,
  eventually,
  fleet,
  isolatedNats,
  judge,
  publishScripts,
  commitCount,
  readStream,
  startTestController,
  streamCount,
  vpcScript,
  type IsolatedNats,
} from '../support/index.js';

const HOSTS = fleet(10, 50); // 500 hosts in 10 clusters

function scripts(prefix: string, vpcs: number, perVpc: number): Map<string, unknown[]> {
  const out = new Map<string, unknown[]>();
  for (let v = 0; v < vpcs; v++) {
    const vpcId = `${prefix}${v}`;
    out.set(vpcId, vpcScript(vpcId, perVpc, HOSTS, 1000 + v));
  }
  return out;
}

/** Waits until EVENTS holds `count` commits (one per intent). */
async function decided(server: IsolatedNats, count: number, timeoutMs = 120_000): Promise<void> {
  await eventually(async () => ((await commitCount(server.nc)) >= count ? true : undefined), {
    timeoutMs,
    intervalMs: 200,
    what: `${count} commits in EVENTS`,
  });
}

/** The whole check: EVENTS ≡ pure decider over INTENTS; GOALSTATES ≡ its projection, once each. */
async function assertJudged(server: IsolatedNats, vpcIds: string[], intents: number) {
  assert.is(await streamCount(server.jsm, streams.intents), intents, 'INTENTS holds every intent');
  const verdict = await judge(server.nc, vpcIds, HOSTS);
  assert.is(verdict.intents, intents);
  assert.is(verdict.commits, intents, 'exactly one trace per intent');
  assert.is(await commitCount(server.nc), intents, 'and nothing else in EVENTS');
  assert.ok(verdict.accepted > intents / 2, `accepted ${verdict.accepted}`);
  assert.ok(verdict.rejected > intents / 20, `rejected ${verdict.rejected}`);
  const goalStates = await readStream(server.nc, streams.goalStates);
  const ids = goalStates.map((m) => m.msgId ?? '');
  assert.is(new Set(ids).size, ids.length, 'each goal-state message stored once');
  assert.equal(new Set(ids), verdict.expectedGoalStates, 'exactly the projected goal states');
  return { verdict, goalStates: goalStates.length };
}

const Load = suite('controller: 10,000 intents over 200 VPCs');

Load('every intent is decided once, in INTENTS order, as the pure decider decides it', async () => {
  const server = await isolatedNats();
  let controller: Controller | undefined;
  const clients = await clientConnections(server.url, 4);
  try {
    await putHosts(server.nc, HOSTS);
    controller = await startTestController(server.url);
    const load = scripts('load-', 200, 50);
    const published = await publishScripts(clients, load);
    assert.is(published, 10_000);
    await decided(server, 10_000);
    const { goalStates } = await assertJudged(server, [...load.keys()], 10_000);
    assert.is(controller.metrics.appended, 10_000);
    assert.is(controller.metrics.goalStates, goalStates);
    assert.is(controller.metrics.goalStateDuplicates, 0);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await controller?.stop();
    await server.stop();
  }
});

Load('two instances with disjoint buckets give the same guarantees', async () => {
  const server = await isolatedNats();
  const controllers: Controller[] = [];
  const clients = await clientConnections(server.url, 3);
  try {
    await putHosts(server.nc, HOSTS);
    const half = Array.from({ length: 512 }, (_, i) => i);
    controllers.push(await startTestController(server.url, { buckets: half }));
    controllers.push(await startTestController(server.url, { buckets: half.map((b) => b + 512) }));
    const load = scripts('two-', 200, 50);
    await publishScripts(clients, load);
    await decided(server, 10_000);
    await assertJudged(server, [...load.keys()], 10_000);
    const [a, b] = controllers.map((c) => c.metrics.appended);
    assert.is(a! + b!, 10_000);
    assert.ok(a! > 2000 && b! > 2000, `both instances worked: ${a} / ${b}`);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(controllers.map((c) => c.stop()));
    await server.stop();
  }
});

Load.run();
