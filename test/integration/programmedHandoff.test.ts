/**
 * `programmed` survives a bucket moving (issues 7 and 9): intents a controller
 * left waiting for acks — when a rebalance gives their bucket away, or when it is
 * SIGKILLed — are adopted by the new owner, which replays the acks stored
 * meanwhile. Under a steady load with a healthy fleet, every accepted intent ends
 * with exactly one final status, and it is `programmed`.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { putHosts, type ManagedProcess } from '../../infra/index.js';
import { decodeEventMessage, streams, type Status } from '../../shared/index.js';
import { startFleet, type Fleet } from '../../services/nca/fleet.js';
import {
  clientConnections,
  eventually,
  fleet,
  isolatedNats,
  opsUrl,
  publishScripts,
  commitCount,
  unique,
  readStream,
  sample,
  spawnController,
  testLog,
  vpcScript,
  type IsolatedNats,
} from '../support/index.js';

const TTL_MS = 3000;
const DEADLINE_MS = 10_000;
const VPCS = 80;
const PER_VPC = 30;

const env = (id: string): Record<string, string> => ({
  ALCOR_INSTANCE_ID: id,
  ALCOR_HEARTBEAT_TTL_MS: String(TTL_MS),
  ALCOR_PROGRAMMED_DEADLINE_MS: String(DEADLINE_MS),
  ALCOR_METRICS_PORT: '0',
});

interface Run {
  server: IsolatedNats;
  fleet: Fleet;
  procs: ManagedProcess[];
  ids: string[];
  publishing: Promise<number>;
}

/**
 * `controllers` controllers, a fleet, and a steady load started; `move` happens
 * once 600 commits are in.
 */
async function underLoad(
  tag: string,
  controllers: number,
  move: (run: Run) => Promise<void>,
): Promise<Run> {
  const server = await isolatedNats({ heartbeatTtlMs: TTL_MS });
  const hosts = fleet(6, 10, tag);
  await putHosts(server.nc, hosts);
  const procs: ManagedProcess[] = [];
  for (let c = 1; c <= controllers; c++)
    procs.push(await spawnController(server.url, env(`${tag}-${c}`)));
  if (controllers > 1)
    await eventually(
      async () => {
        for (const p of procs) if ((await metric(p, 'alcor_buckets_owned')) === 0) return undefined;
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'every controller owning buckets' },
    );
  // Slow agents: many intents wait for acks at any moment, so a move catches some.
  const nca = await startFleet({
    natsUrl: server.url,
    hosts,
    logger: testLog,
    fleetId: tag,
    ackDelayMs: 250,
  });
  const load = new Map<string, unknown[]>();
  for (let v = 0; v < VPCS; v++)
    load.set(`${tag}-v${v}`, vpcScript(`${tag}-v${v}`, PER_VPC, hosts, 500 + v));
  const ids = [...load.values()].flat().map((i) => (i as { id: string }).id);
  const clients = await clientConnections(server.url, 2);
  const publishing = publishScripts(clients, load, 64, 400).finally(() =>
    Promise.all(clients.map((c) => c.close())),
  );
  const run = { server, fleet: nca, procs, ids, publishing };
  await eventually(async () => ((await commitCount(server.nc)) >= 600 ? true : undefined), {
    timeoutMs: 60_000,
    intervalMs: 20,
    what: '600 commits before the move',
  });
  await move(run);
  return run;
}

async function statusesByIntent(run: Run): Promise<Map<string, Status[]>> {
  const byIntent = new Map<string, Status[]>();
  for (const m of await readStream(run.server.nc, streams.status)) {
    const s = JSON.parse(new TextDecoder().decode(m.data)) as Status;
    byIntent.set(s.intentId, [...(byIntent.get(s.intentId) ?? []), s]);
  }
  return byIntent;
}

/**
 * Each intent's statuses once every accepted one has a final status, and the
 * deadline has passed since (a second final status would be out by then).
 */
async function finalStatuses(run: Run, deadlineMs = DEADLINE_MS): Promise<Map<string, Status[]>> {
  await run.publishing;
  await eventually(
    async () => {
      const byIntent = await statusesByIntent(run);
      for (const id of run.ids) {
        const outcomes = (byIntent.get(id) ?? []).map((s) => s.outcome);
        if (outcomes.includes('rejected')) continue;
        if (!outcomes.includes('accepted')) return undefined;
        if (!outcomes.includes('programmed') && !outcomes.includes('incomplete')) return undefined;
      }
      return true;
    },
    { timeoutMs: 90_000, intervalMs: 500, what: 'a final status for every accepted intent' },
  );
  await new Promise((r) => setTimeout(r, deadlineMs + 2000));
  return statusesByIntent(run);
}

function assertAllProgrammedOnce(
  run: Run,
  byIntent: Map<string, Status[]>,
  least = VPCS * PER_VPC * 0.5,
): void {
  let accepted = 0;
  for (const id of run.ids) {
    const statuses = byIntent.get(id)!;
    if (statuses.some((s) => s.outcome === 'rejected')) continue;
    accepted += 1;
    const finals = statuses.filter((s) => s.outcome === 'programmed' || s.outcome === 'incomplete');
    assert.equal(
      finals.map((s) => s.outcome),
      ['programmed'],
      `${id}: one final status, programmed (${JSON.stringify(finals)})`,
    );
  }
  assert.ok(accepted > least, `${accepted} accepted`);
}

async function metric(proc: ManagedProcess, name: string): Promise<number> {
  const text = await (await fetch(`${opsUrl(proc)}/metrics`)).text();
  return sample(text, name);
}

async function stop(run: Run | undefined): Promise<void> {
  await run?.publishing.catch(() => undefined);
  await run?.fleet.stop();
  for (const p of run?.procs ?? []) await p.stop();
  await run?.server.stop();
}

const Handoff = suite('programmed across a bucket move');

Handoff('a rebalance moves buckets under load: the joiner adopts what was waiting', async () => {
  let run: Run | undefined;
  try {
    run = await underLoad('rb', 1, async (r) => {
      r.procs.push(await spawnController(r.server.url, env('rb-2')));
    });
    const byIntent = await finalStatuses(run);
    assertAllProgrammedOnce(run, byIntent);
    const joiner = run.procs[1]!;
    assert.ok((await metric(joiner, 'alcor_buckets_owned')) > 0, 'the joiner took buckets');
    assert.ok(
      (await metric(joiner, 'alcor_programmed_adopted_total')) > 0,
      'the joiner adopted intents left waiting',
    );
  } finally {
    await stop(run);
  }
});

Handoff(
  'a controller SIGKILLed under load: the survivor adopts and replays stored acks',
  async () => {
    let run: Run | undefined;
    try {
      run = await underLoad('kl', 2, async (r) => {
        r.procs[0]!.signal('SIGKILL');
        await r.procs[0]!.stop();
      });
      const byIntent = await finalStatuses(run);
      assertAllProgrammedOnce(run, byIntent);
      const survivor = run.procs[1]!;
      assert.ok((await metric(survivor, 'alcor_programmed_adopted_total')) > 0, 'adopted');
      assert.ok(
        (await metric(survivor, 'alcor_programmed_replayed_acks_total')) > 0,
        'acks stored while their owner was dead were replayed',
      );
    } finally {
      await stop(run);
    }
  },
);

Handoff(
  'a backlog decided in groups, its owner killed before any ack: the next owner adopts every intent of each group',
  async () => {
    // A backlog published at once: its intents are decided in groups of many commits
    // sharing one revision. The agents ack late (after the takeover); the deadline outlasts both.
    const deadlineMs = 60_000;
    const groupEnv = (id: string): Record<string, string> => ({
      ...env(id),
      ALCOR_PROGRAMMED_DEADLINE_MS: String(deadlineMs),
    });
    const tag = unique('gr');
    const server = await isolatedNats({ heartbeatTtlMs: TTL_MS });
    const procs: ManagedProcess[] = [];
    let nca: Fleet | undefined;
    try {
      const hosts = fleet(3, 5, tag);
      await putHosts(server.nc, hosts);
      const load = new Map<string, unknown[]>();
      for (let v = 0; v < 6; v++)
        load.set(`${tag}-v${v}`, vpcScript(`${tag}-v${v}`, 40, hosts, 900 + v));
      const ids = [...load.values()].flat().map((i) => (i as { id: string }).id);
      // The backlog but each VPC's last intent; that one is decided after the
      // backlog's group is out, so the new owner does not send that group again
      // (its last commit says it was out): only the logs tell what waits.
      const backlog = new Map([...load].map(([v, script]) => [v, script.slice(0, -1)]));
      const last = new Map([...load].map(([v, script]) => [v, script.slice(-1)]));
      procs.push(await spawnController(server.url, groupEnv(`${tag}-1`)));
      nca = await startFleet({
        natsUrl: server.url,
        hosts,
        logger: testLog,
        fleetId: tag,
        ackDelayMs: 20_000,
      });
      const [client] = await clientConnections(server.url, 1);
      await publishScripts([client!], backlog);
      const run: Run = {
        server,
        fleet: nca,
        procs,
        ids,
        publishing: Promise.resolve(ids.length),
      };
      const decided = (of: readonly unknown[]) =>
        eventually(
          async () => {
            const byIntent = await statusesByIntent(run);
            return of.every((i) => byIntent.has((i as { id: string }).id)) ? true : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 200, what: 'every intent decided' },
        );
      await decided([...backlog.values()].flat());
      // Their goal states out too (the count stays put): the last commits say so.
      let before = -1;
      await eventually(
        async () => {
          const now = await metric(procs[0]!, 'alcor_controller_goal_states_total');
          const still = now > 0 && now === before;
          before = now;
          return still ? true : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 300, what: "the backlog's goal states out" },
      );
      await publishScripts([client!], last);
      await client!.close();
      await decided([...last.values()].flat());
      const groups = (await readStream(server.nc, streams.events)).map((m) => {
        const decoded = decodeEventMessage(m.subject.slice(m.subject.indexOf('.') + 1), m.data);
        return decoded.ok ? decoded.value.length : 0;
      });
      assert.ok(
        groups.some((n) => n > 1),
        `groups of several commits (sizes ${groups.join(',')})`,
      );
      procs[0]!.signal('SIGKILL');
      await procs[0]!.stop();
      procs.push(await spawnController(server.url, groupEnv(`${tag}-2`)));
      const survivor = procs[1]!;
      await eventually(
        async () =>
          (await metric(survivor, 'alcor_programmed_adopted_total')) > 0 ? true : undefined,
        { timeoutMs: 30_000, intervalMs: 200, what: 'the next owner adopting' },
      );
      assertAllProgrammedOnce(run, await finalStatuses(run, 0), ids.length * 0.5);
      assert.ok(
        (await metric(survivor, 'alcor_controller_republished_total')) <= load.size,
        'at most the last groups sent again: the rest is adopted from the logs',
      );
    } finally {
      await nca?.stop();
      for (const p of procs) await p.stop();
      await server.stop();
    }
  },
);

Handoff.run();
