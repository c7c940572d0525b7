/**
 * The controller's behaviour as a client sees it (issue 4): the sync API, the
 * status stream, compare-and-set races, re-sent ids, bad input on every path,
 * passivation and snapshots. One nats-server and one controller for the suite;
 * every test uses VPC ids of its own.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jetstream } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { connectNats, createKvSnapshotStore, putHosts } from '../../infra/index.js';
import { LIMITS, bucketOf, kvBuckets, streams, subjects, type Status } from '../../shared/index.js';
import type { ApplyReply, ApplyReplyItem, Controller } from '../../services/controller/index.js';
import { startFleet, type Fleet } from '../../services/nca/fleet.js';
import {
  eventually,
  fleet,
  isolatedNats,
  readCommits,
  readStream,
  startTestController,
  testLog,
  unique,
  type IsolatedNats,
} from '../support/index.js';

const HOSTS = fleet(2, 3, 'api');
/** Registered, but no agent runs for it: nothing it is sent is ever acked. */
const [GHOST] = fleet(1, 1, 'ghost', { regionPrefix: 'g' }).map((h) => ({
  ...h,
  underlayIp: '172.31.255.254',
}));
const encoder = new TextEncoder();

interface Ctx {
  server: IsolatedNats;
  controller: Controller;
  other: NatsConnection;
  /** The hosts' agents (JetStream-bound), so that intents reach `programmed`. */
  agents: Fleet;
}

const Api = suite<Ctx>('controller: what clients see');

Api.before(async (ctx) => {
  ctx.server = await isolatedNats();
  await putHosts(ctx.server.nc, [...HOSTS, GHOST!]);
  ctx.controller = await startTestController(ctx.server.url, {
    idleMs: 300,
    snapshotEvery: 5,
  });
  ctx.other = await connectNats(ctx.server.url, { name: 'second client', reconnect: false });
  ctx.agents = await startFleet({
    natsUrl: ctx.server.url,
    kafka: {},
    hosts: HOSTS,
    logger: testLog,
    fleetId: 'api',
  });
});

Api.after(async (ctx) => {
  await ctx.agents.stop();
  await ctx.other.close();
  await ctx.controller.stop();
  await ctx.server.stop();
});

async function apply(
  nc: NatsConnection,
  body: unknown,
  wait?: Record<string, string>,
): Promise<ApplyReply> {
  const data =
    typeof body === 'string' ? encoder.encode(body) : encoder.encode(JSON.stringify(body));
  const h = headers();
  for (const [k, v] of Object.entries(wait ?? {})) h.set(k, v);
  const reply = await nc.request(subjects.applyIntents, data, {
    timeout: 60_000,
    ...(wait ? { headers: h } : {}),
  });
  return reply.json<ApplyReply>();
}

const vpcCreate = (vpcId: string, id = unique('i')) => ({
  id,
  kind: 'vpc.create',
  vpcId,
  spec: { cidr: '10.0.0.0/16' },
});
const subnet = (vpcId: string, id = unique('i')) => ({
  id,
  kind: 'subnet.create',
  vpcId,
  spec: { subnetId: 's1', cidr: '10.0.1.0/24', gatewayIp: '10.0.1.1' },
});
const port = (vpcId: string, portId: string, id = unique('i'), hostId = HOSTS[0]!.hostId) => ({
  id,
  kind: 'port.create',
  vpcId,
  spec: { portId, subnetId: 's1', hostId },
});

async function allStatuses(ctx: Ctx, vpcId: string): Promise<Status[]> {
  return (await readStream(ctx.server.nc, streams.status, subjects.status(vpcId))).map(
    (m) => JSON.parse(new TextDecoder().decode(m.data)) as Status,
  );
}

/** The decisions (accepted or rejected), without the programmed answers that follow them. */
async function statuses(ctx: Ctx, vpcId: string): Promise<Status[]> {
  return (await allStatuses(ctx, vpcId)).filter(
    (s) => s.outcome === 'accepted' || s.outcome === 'rejected',
  );
}

/** The VPC's commits in EVENTS: one per intent it decided. */
async function events(ctx: Ctx, vpcId: string) {
  return readCommits(ctx.server.nc, vpcId);
}

Api('the sync API answers each intent of a batch, in request order', async (ctx) => {
  const vpcId = unique('vpc');
  const batch = [vpcCreate(vpcId), subnet(vpcId), port(vpcId, 'p1'), port(vpcId, 'p1')];
  const reply = (await apply(ctx.server.nc, batch)) as ApplyReplyItem[];
  assert.equal(
    reply.map((r) => [r.id, r.outcome]),
    batch.map((b, i) => [b.id, i < 3 ? 'accepted' : 'rejected']),
  );
  assert.equal((reply[3] as { error: unknown }).error, {
    code: 'port_exists',
    message: 'port p1 already exists',
    path: 'spec.portId',
  });
  const revisions = reply.slice(0, 3).map((r) => (r as { revision: number }).revision);
  assert.equal(
    [...revisions].sort((a, b) => a - b),
    revisions,
    'revisions grow in order',
  );
  const seen = await eventually(async () => {
    const s = await statuses(ctx, vpcId);
    return s.length === 4 ? s : undefined;
  });
  assert.equal(
    seen.map((s) => [s.intentId, s.outcome, s.revision]),
    reply.map((r, i) => [r.id, r.outcome, i < 3 ? revisions[i] : seen[3]!.revision]),
  );
  const programmed = await eventually(async () => {
    const s = (await allStatuses(ctx, vpcId)).filter((x) => x.outcome === 'programmed');
    return s.length === 3 ? s : undefined;
  });
  assert.equal(
    programmed.map((s) => s.intentId).sort(),
    batch
      .slice(0, 3)
      .map((b) => b.id)
      .sort(),
    'each accepted intent, and no rejected one, is programmed',
  );
});

Api('a single envelope gets a single answer; a batch of 1,000 is answered whole', async (ctx) => {
  const vpcId = unique('vpc');
  const one = (await apply(ctx.server.nc, vpcCreate(vpcId))) as ApplyReplyItem;
  assert.is(one.outcome, 'accepted');
  await apply(ctx.server.nc, subnet(vpcId));
  // A whole batch, or (servers with a small max_payload: npm run test:limits) as many
  // intents as a request and its answer can carry there.
  const size = Math.min(
    LIMITS.batchSize,
    Math.floor(((ctx.server.nc.info?.max_payload ?? Infinity) - 4096) / 512),
  );
  const batch = Array.from({ length: size }, (_, i) => port(vpcId, `p${i}`));
  const reply = (await apply(ctx.server.nc, batch)) as ApplyReplyItem[];
  assert.is(reply.length, size);
  const fits = Math.min(253, size);
  assert.is(
    reply.filter((r) => r.outcome === 'accepted').length,
    fits,
    '10.0.1.0/24 holds 253 ports',
  );
  assert.ok(
    reply.slice(fits).every((r) => r.outcome === 'rejected' && r.error.code === 'subnet_full'),
  );
  assert.is((await events(ctx, vpcId)).length, size + 2);
});

Api(
  'overload, open loop: every sync request is answered (a decision or a clear timeout), none lost',
  async (ctx) => {
    // 3,000 single-intent requests at once over 60 VPCs from two connections, far
    // more than this machine decides in the decision timeout's span at the start.
    const N = 10_000;
    const vpcs = Array.from({ length: 60 }, () => unique('over'));
    const requests: Array<Promise<ApplyReply>> = [];
    for (const vpcId of vpcs) requests.push(apply(ctx.server.nc, vpcCreate(vpcId)));
    for (let i = 0; i < N - vpcs.length; i++) {
      const vpcId = vpcs[i % vpcs.length]!;
      const body = {
        ...port(vpcId, `p${i}`),
        spec: { ...port(vpcId, `p${i}`).spec, subnetId: 'none' },
      };
      requests.push(apply(i % 2 ? ctx.other : ctx.server.nc, body));
    }
    const replies = await Promise.all(requests);
    const outcomes = new Map<string, number>();
    for (const r of replies) {
      const item = r as ApplyReplyItem | { error: { code: string } };
      const what = !('outcome' in item)
        ? item.error.code
        : item.outcome === 'pending'
          ? `pending:${item.error.code}`
          : item.outcome;
      outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
    }
    // Every reply is a decision, or says it was stored and not decided in time.
    for (const what of outcomes.keys())
      assert.ok(
        ['accepted', 'rejected', 'pending:decision_timeout'].includes(what),
        `reply ${what}`,
      );
    assert.is(replies.length, N);
    assert.is(outcomes.get('accepted') ?? 0, vpcs.length, 'the VPCs were created');
    // The statuses on the stream agree: one decision per intent, whatever the reply.
    await eventually(
      async () => {
        const decided = new Set<string>();
        for (const vpcId of vpcs)
          for (const m of await readStream(ctx.server.nc, streams.status, subjects.status(vpcId)))
            decided.add((JSON.parse(new TextDecoder().decode(m.data)) as Status).intentId);
        return decided.size === N ? true : undefined;
      },
      { timeoutMs: 60_000, what: 'a status for every intent' },
    );
  },
);

Api(
  'sync waiters are released per intent, not when the VPC has worked off what came after',
  async (ctx) => {
    const vpcId = unique('backlog');
    const wide = {
      ...subnet(vpcId),
      spec: { subnetId: 's1', cidr: '10.0.0.0/17', gatewayIp: '10.0.0.1' },
    };
    await apply(ctx.server.nc, [vpcCreate(vpcId), wide]);
    const js = jetstream(ctx.other);
    const backlog = (from: number) =>
      Promise.all(
        Array.from({ length: 1500 }, (_, i) =>
          js.publish(
            subjects.intent(vpcId),
            encoder.encode(JSON.stringify(port(vpcId, `p${from + i}`))),
          ),
        ),
      );
    // 1,500 intents, then the one waited for, then 1,500 more while it is worked on.
    await backlog(0);
    const waited = apply(ctx.server.nc, port(vpcId, 'waited')).then((r) => ({
      reply: r as ApplyReplyItem,
      at: Date.now(),
    }));
    // Stored before the second backlog is published (the API stores it first).
    const subject = subjects.intentMapped(bucketOf(vpcId), vpcId);
    await eventually(
      async () =>
        (await readStream(ctx.server.nc, streams.intents, subject)).length >= 1503
          ? true
          : undefined,
      { timeoutMs: 30_000, intervalMs: 20, what: 'the waited intent stored' },
    );
    await backlog(1500);
    const { reply, at } = await waited;
    assert.ok('outcome' in reply && reply.outcome === 'accepted', JSON.stringify(reply));
    let last = 0;
    await eventually(
      async () => {
        const statuses = await readStream(ctx.server.nc, streams.status, subjects.status(vpcId));
        const decided = statuses.filter((m) => {
          const st = JSON.parse(new TextDecoder().decode(m.data)) as Status;
          return st.outcome === 'accepted' || st.outcome === 'rejected';
        });
        if (decided.length < 3003) return undefined;
        last = Math.max(...decided.map((m) => m.time.getTime()));
        return true;
      },
      { timeoutMs: 90_000, what: 'the backlog decided' },
    );
    assert.ok(at < last, `answered ${at - last} ms after the last of the backlog was decided`);
  },
);

Api('compare-and-set: of two clients racing at the same revision exactly one wins', async (ctx) => {
  const vpcId = unique('vpc');
  const created = (await apply(ctx.server.nc, [vpcCreate(vpcId), subnet(vpcId)])) as Array<{
    revision: number;
  }>;
  const at = created[1]!.revision;
  const route = (nextHop: string) => ({
    id: unique('cas'),
    kind: 'route.set',
    vpcId,
    expectedRevision: at,
    spec: { destination: '0.0.0.0/0', nextHop },
  });
  const [a, b] = (await Promise.all([
    apply(ctx.server.nc, route('10.0.1.7')),
    apply(ctx.other, route('10.0.1.8')),
  ])) as ApplyReplyItem[];
  const outcomes = [a!.outcome, b!.outcome].sort();
  assert.equal(outcomes, ['accepted', 'rejected']);
  const loser = [a!, b!].find((r) => r.outcome === 'rejected') as { error: { code: string } };
  assert.is(loser.error.code, 'revision_conflict');
});

Api('a re-sent intent id makes no new events and answers like the first time', async (ctx) => {
  const vpcId = unique('vpc');
  await apply(ctx.server.nc, [vpcCreate(vpcId), subnet(vpcId)]);
  const intent = port(vpcId, 'p1', unique('same'));
  const first = await apply(ctx.server.nc, intent);
  const before = (await events(ctx, vpcId)).length;
  // Within the duplicate window: INTENTS drops it; the owner answers.
  assert.equal(await apply(ctx.server.nc, intent), { ...(first as object), unchanged: true });
  // As if after the window: stored again (no msgID); the decider knows the id.
  const js = jetstream(ctx.server.nc);
  await js.publish(subjects.intent(vpcId), encoder.encode(JSON.stringify(intent)));
  const again = await eventually(async () => {
    const s = (await statuses(ctx, vpcId)).filter((x) => x.intentId === intent.id);
    return s.length >= 1 ? s : undefined;
  });
  assert.is(again[0]!.outcome, 'accepted');
  assert.is(again[0]!.revision, (first as { revision: number }).revision);
  // A later intent is decided, so the re-sent one was handled; still no new event for it.
  await apply(ctx.server.nc, port(vpcId, 'p2'));
  assert.is((await events(ctx, vpcId)).length, before + 1);
});

Api('Alcor-Wait: programmed answers once every affected host applied', async (ctx) => {
  const vpcId = unique('vpc');
  const batch = [
    vpcCreate(vpcId),
    subnet(vpcId),
    port(vpcId, 'p1'),
    port(vpcId, 'p2', unique('i'), HOSTS[4]!.hostId),
    port(vpcId, 'p1'),
  ];
  const wait = { 'Alcor-Wait': 'programmed' };
  const reply = (await apply(ctx.server.nc, batch, wait)) as ApplyReplyItem[];
  assert.equal(
    reply.map((r) => [r.outcome, r.outcome === 'accepted' ? r.programmed?.outcome : undefined]),
    [
      ['accepted', 'programmed'],
      ['accepted', 'programmed'],
      ['accepted', 'programmed'],
      ['accepted', 'programmed'],
      ['rejected', undefined],
    ],
  );
  const second = reply[3] as { programmed?: { hosts?: { total: number; applied: number } } };
  assert.ok((second.programmed?.hosts?.applied ?? 0) >= 1, 'the port host applied it');
  // The programmed answer is what status.<vpc> says, for the same intents.
  const onStatus = (await allStatuses(ctx, vpcId)).filter((s) => s.outcome === 'programmed');
  assert.equal(
    onStatus.map((s) => s.intentId).sort(),
    batch
      .slice(0, 4)
      .map((b) => b.id)
      .sort(),
  );
  // Re-sent: decided long ago, its answer is found in STATUS.
  const again = (await apply(ctx.server.nc, batch[2], wait)) as ApplyReplyItem;
  assert.equal(again.outcome === 'accepted' && again.programmed?.outcome, 'programmed');
  // A host with no agent never acks: the wait ends, the intent is still pending there.
  const ghost = (await apply(ctx.server.nc, port(vpcId, 'p3', unique('i'), GHOST!.hostId), {
    ...wait,
    'Alcor-Wait-Ms': '400',
  })) as ApplyReplyItem;
  assert.is(ghost.outcome, 'accepted');
  assert.equal(ghost.outcome === 'accepted' && ghost.programmed, {
    outcome: 'pending',
    error: {
      code: 'programmed_timeout',
      message: 'not programmed within 400 ms; the answer will appear on its status subject',
    },
  });
  // Without the header: no programmed field.
  const plain = (await apply(ctx.server.nc, port(vpcId, 'p4'))) as ApplyReplyItem;
  assert.is(plain.outcome === 'accepted' && plain.programmed, undefined);
});

Api('bad wait headers are refused with the header named; nothing is stored', async (ctx) => {
  const vpcId = unique('vpc');
  const cases: Array<[Record<string, string>, string]> = [
    [{ 'Alcor-Wait': 'decided' }, 'header.Alcor-Wait'],
    [{ 'Alcor-Wait': 'programmed', 'Alcor-Wait-Ms': '-5' }, 'header.Alcor-Wait-Ms'],
    [{ 'Alcor-Wait': 'programmed', 'Alcor-Wait-Ms': '1e3' }, 'header.Alcor-Wait-Ms'],
    [{ 'Alcor-Wait': 'programmed', 'Alcor-Wait-Ms': '3600001' }, 'header.Alcor-Wait-Ms'],
    [{ 'Alcor-Wait-Ms': '100' }, 'header.Alcor-Wait-Ms'],
  ];
  for (const [h, path] of cases) {
    const reply = (await apply(ctx.server.nc, vpcCreate(vpcId), h)) as {
      error: { code: string; path: string };
    };
    assert.equal([reply.error.code, reply.error.path], ['bad_header', path], JSON.stringify(h));
  }
  assert.is((await events(ctx, vpcId)).length, 0, 'no intent of a refused request was decided');
});

Api(
  'the sync API refuses bad requests with the exact code, and answers bad items one by one',
  async (ctx) => {
    assert.equal(await apply(ctx.server.nc, 'not json'), {
      error: {
        code: 'invalid_json',
        message: ((await apply(ctx.server.nc, 'not json')) as { error: { message: string } }).error
          .message,
      },
    });
    assert.equal(
      ((await apply(ctx.server.nc, [])) as { error: { code: string } }).error.code,
      'empty_batch',
    );
    const tooMany = Array.from({ length: LIMITS.batchSize + 1 }, () => ({}));
    assert.equal(
      ((await apply(ctx.server.nc, tooMany)) as { error: { code: string } }).error.code,
      'batch_too_large',
    );
    const vpcId = unique('vpc');
    const reply = (await apply(ctx.server.nc, [
      vpcCreate(vpcId),
      { id: unique('i'), kind: 'port.teleport', vpcId, spec: {} },
      {
        id: unique('i'),
        kind: 'subnet.create',
        vpcId,
        spec: { subnetId: 's1', cidr: '10.0.1.0/33', gatewayIp: '10.0.1.1' },
      },
      { id: 'a b', kind: 'vpc.delete', vpcId, spec: {} },
      { id: unique('i'), kind: 'vpc.delete', vpcId: 'no/such', spec: {} },
      { id: unique('i'), kind: 'vpc.delete', vpcId, spec: {}, extra: 1 },
      subnet(vpcId),
    ])) as ApplyReplyItem[];
    assert.equal(
      reply.map((r) =>
        r.outcome === 'accepted' ? 'accepted' : `${r.error.code}@${r.error.path ?? ''}`,
      ),
      [
        'accepted',
        'unknown_kind@kind',
        'invalid_cidr@spec.cidr',
        'id_format@id',
        'id_format@vpcId',
        'unknown_field@extra',
        'accepted',
      ],
    );
    const invalid = await readStream(ctx.server.nc, streams.status, subjects.statusInvalid);
    assert.ok(invalid.length >= 1, 'an unusable vpcId is reported on status._invalid');
  },
);

Api(
  'the two ways in judge alike: the sync API refuses what the intake refuses, each refusal leaves its trace and carries the revision to retry from',
  async (ctx) => {
    const vpcId = unique('vpc');
    const created = (await apply(ctx.server.nc, [vpcCreate(vpcId), subnet(vpcId)])) as Array<{
      revision: number;
    }>;
    const stale = created[0]!.revision;
    const before = (await events(ctx, vpcId)).length;
    // Larger than an intent may be, though the request itself is within its limit.
    const huge = { ...port(vpcId, 'p-huge'), note: 'x'.repeat(LIMITS.intentBytes) };
    const serverTakesIt =
      JSON.stringify(huge).length + 4096 <= (ctx.server.nc.info?.max_payload ?? 0);
    const route = (expectedRevision: number) => ({
      id: unique('cas'),
      kind: 'route.set',
      vpcId,
      expectedRevision,
      spec: { destination: '0.0.0.0/0', nextHop: '10.0.1.7' },
    });
    const reply = (await apply(ctx.server.nc, [
      huge,
      { id: unique('i'), kind: 'port.teleport', vpcId, spec: {} },
      route(stale),
    ])) as Array<Extract<ApplyReplyItem, { outcome: 'rejected' }>>;
    assert.equal(
      reply.map((r) => `${r.outcome}:${r.error.code}`),
      ['rejected:too_large', 'rejected:unknown_kind', 'rejected:revision_conflict'],
    );
    const refusals = (await events(ctx, vpcId)).slice(before);
    // Over the size limit its owner does not read it: recorded as `invalid-<sequence>`,
    // as the same bytes published are (unless the server refused them outright).
    assert.equal(
      refusals.map((c) => [
        c.commit.intentId.startsWith('invalid-') ? 'invalid-' : c.commit.intentId,
        c.commit.events[0]?.type,
      ]),
      [
        ...(serverTakesIt ? [['invalid-', 'IntentRejected']] : []),
        ...reply.slice(1).map((r) => [r.id, 'IntentRejected']),
      ],
      'each refusal is one IntentRejected in EVENTS, like a published one',
    );
    for (const r of reply.slice(1)) {
      const recorded = refusals.find((c) => c.commit.intentId === r.id)!;
      assert.is(r.revision, recorded.revision, `${r.id}: the revision that recorded it`);
    }
    // The conflict's answer names where the VPC is now: retrying from it goes through.
    const conflict = reply[2]!;
    assert.match(conflict.error.message, /retry with that one/);
    const retried = (await apply(ctx.server.nc, route(conflict.revision!))) as ApplyReplyItem;
    assert.is(retried.outcome, 'accepted', JSON.stringify(retried));
    // The same bytes published are refused with the same code.
    if (serverTakesIt) {
      const ack = await jetstream(ctx.server.nc).publish(
        subjects.intent(vpcId),
        encoder.encode(JSON.stringify(huge)),
      );
      const published = await eventually(async () =>
        (await statuses(ctx, vpcId)).find((s) => s.intentId === `invalid-${ack.seq}`),
      );
      assert.is(published.error?.code, 'too_large');
    }
  },
);

Api(
  'bad intents published to the stream get a status with the exact code; the bucket goes on',
  async (ctx) => {
    const vpcId = unique('vpc');
    const js = jetstream(ctx.server.nc);
    const send = (body: string | Uint8Array, msgID?: string) =>
      js.publish(subjects.intent(vpcId), typeof body === 'string' ? encoder.encode(body) : body, {
        ...(msgID ? { msgID } : {}),
      });
    await send(JSON.stringify(vpcCreate(vpcId)));
    await send('{"id": "half-');
    await send(JSON.stringify({ id: 'k1', kind: 'port.teleport', vpcId, spec: {} }));
    await send(
      JSON.stringify({ id: 'k2', kind: 'subnet.create', vpcId, spec: { subnetId: 's1' } }),
    );
    // Over the intent limit: refused by the controllers, or (a server whose
    // max_payload is below it: npm run test:limits) by the server, never stored.
    const overLimit = new Uint8Array(LIMITS.intentBytes + 1).fill(32);
    const serverTakesIt = overLimit.length + 4096 <= (ctx.server.nc.info?.max_payload ?? 0);
    if (serverTakesIt) await send(overLimit);
    else
      assert.match(
        await send(overLimit).then(
          () => 'stored',
          (err: unknown) => (err as Error).message,
        ),
        /max_payload/,
      );
    await send(JSON.stringify({ ...vpcCreate(vpcId), vpcId: 'another-vpc' }));
    await send(JSON.stringify(subnet(vpcId, 'k-last')));
    const expected = [
      'accepted',
      'invalid_json@',
      'unknown_kind@kind',
      'missing_field@spec.cidr',
      ...(serverTakesIt ? ['too_large@'] : []),
      'wrong_vpc@vpcId',
      'accepted',
    ];
    const seen = await eventually(async () => {
      const s = await statuses(ctx, vpcId);
      return s.length >= expected.length ? s : undefined;
    });
    assert.equal(
      seen.map((s) =>
        s.outcome === 'accepted' ? 'accepted' : `${s.error?.code}@${s.error?.path ?? ''}`,
      ),
      expected,
    );
    assert.is((await events(ctx, vpcId)).length, expected.length, 'each left one trace in EVENTS');
  },
);

Api(
  'an intent on a subject that is not a VPC id, or in the wrong bucket, is refused on status',
  async (ctx) => {
    const js = jetstream(ctx.server.nc);
    const h = headers();
    await js.publish('intent.bad@vpc', encoder.encode(JSON.stringify({ id: 'bad-token' })), {
      headers: h,
    });
    const invalid = await eventually(async () => {
      const s = (await readStream(ctx.server.nc, streams.status, subjects.statusInvalid)).map(
        (m) => JSON.parse(new TextDecoder().decode(m.data)) as Status,
      );
      return s.find((x) => x.intentId === 'bad-token');
    });
    assert.equal(invalid.error?.code, 'id_format');
    const vpcId = unique('vpc');
    const wrong = (bucketOf(vpcId) + 1) % 1024;
    await js.publish(
      subjects.intentMapped(wrong, vpcId),
      encoder.encode(JSON.stringify(vpcCreate(vpcId, 'misrouted'))),
    );
    const refused = await eventually(async () => (await statuses(ctx, vpcId))[0]);
    assert.is(refused.intentId, 'misrouted');
    assert.is(refused.error?.code, 'wrong_bucket');
    assert.ok(ctx.controller.metrics.refused >= 2);
  },
);

Api('an idle VPC is passivated with a snapshot and rehydrated from it on demand', async (ctx) => {
  const vpcId = unique('vpc');
  await apply(ctx.server.nc, [
    vpcCreate(vpcId),
    subnet(vpcId),
    ...Array.from({ length: 8 }, (_, i) => port(vpcId, `p${i}`)),
  ]);
  const kv = await new Kvm(ctx.server.nc).open(kvBuckets.vpcSnapshots);
  await eventually(async () => ((await kv.get(vpcId))?.operation === 'PUT' ? true : undefined));
  // Every VPC of this suite goes idle and is passivated (idleMs 300).
  await eventually(() => (ctx.controller.activeVpcs() === 0 ? true : undefined), {
    what: 'passivation',
  });
  const loads = ctx.controller.metrics.snapshotLoads;
  const reply = (await apply(ctx.server.nc, [
    port(vpcId, 'p3'),
    port(vpcId, 'p-new'),
  ])) as ApplyReplyItem[];
  assert.equal(
    reply.map((r) => (r.outcome === 'accepted' ? 'accepted' : r.error.code)),
    ['port_exists', 'accepted'],
    'the rehydrated state knows the ports',
  );
  assert.ok(ctx.controller.metrics.snapshotLoads > loads, 'hydrated from the snapshot');
});

Api('a snapshot larger than a KV value is chunked and read back whole', async (ctx) => {
  const store = await createKvSnapshotStore(ctx.server.nc, { chunkBytes: 1024 });
  const vpcId = unique('vpc');
  const text = JSON.stringify({ filler: 'x'.repeat(100_000) });
  await store.save(vpcId, 7, text);
  assert.equal(await store.load(vpcId), { revision: 7, text });
  const newer = JSON.stringify({ filler: 'y'.repeat(5_000) });
  await store.save(vpcId, 9, newer);
  await store.save(vpcId, 8, text); // older than what is there: ignored
  assert.equal(await store.load(vpcId), { revision: 9, text: newer });
  const keys = [];
  for await (const k of await store.kv.keys(`${vpcId}.>`)) keys.push(k);
  assert.is(keys.length, 5, 'the older revision\u2019s chunks are purged');
});

Api.run();
