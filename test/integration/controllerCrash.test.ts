/**
 * A controller process killed with SIGKILL in the middle of the load and started
 * again: nothing lost, nothing applied twice, the same final state (issue 4).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { putHosts } from '../../infra/index.js';
import { streams } from '../../shared/index.js';
import {
  clientConnections,
  eventually,
  fleet,
  isolatedNats,
  judge,
  publishScripts,
  commitCount,
  readStream,
  spawnController,
  streamCount,
  vpcScript,
} from '../support/index.js';

const HOSTS = fleet(10, 50);
const Crash = suite('controller: SIGKILL under load');

Crash('a killed and restarted controller decides everything exactly once', async () => {
  const server = await isolatedNats();
  const clients = await clientConnections(server.url, 3);
  const first = await spawnController(server.url, { ALCOR_INSTANCE_ID: 'first' });
  let second: typeof first | undefined;
  try {
    await putHosts(server.nc, HOSTS);
    const load = new Map<string, unknown[]>();
    for (let v = 0; v < 200; v++)
      load.set(`kill-${v}`, vpcScript(`kill-${v}`, 50, HOSTS, 7000 + v));
    const publishing = publishScripts(clients, load, 128);
    // Kill it once a good part, but not all, of the load is decided.
    const at = await eventually(
      async () => {
        const n = await commitCount(server.nc);
        return n >= 2500 ? n : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 20, what: '2,500 commits before the kill' },
    );
    first.signal('SIGKILL');
    await first.stop();
    assert.ok(at < 10_000, `killed after ${at} commits`);
    await publishing;
    second = await spawnController(server.url, { ALCOR_INSTANCE_ID: 'second' });
    await eventually(async () => ((await commitCount(server.nc)) >= 10_000 ? true : undefined), {
      timeoutMs: 180_000,
      intervalMs: 200,
      what: '10,000 commits after the restart',
    });
    assert.is(await streamCount(server.jsm, streams.intents), 10_000);
    const verdict = await judge(server.nc, [...load.keys()], HOSTS);
    assert.is(verdict.commits, 10_000, 'exactly one trace per intent');
    assert.is(await commitCount(server.nc), 10_000, 'nothing applied twice');
    const ids = (await readStream(server.nc, streams.goalStates)).map((m) => m.msgId ?? '');
    assert.is(new Set(ids).size, ids.length, 'each goal-state message stored once');
    assert.equal(new Set(ids), verdict.expectedGoalStates, 'none lost at the kill');
  } finally {
    first.killNow();
    await second?.stop();
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }
});

Crash.run();
