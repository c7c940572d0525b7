/**
 * DESIGN §9, tried as an attacker would (docs/security.md): on a nats-server of its
 * own with accounts and users per role, a controller running as the `controller`
 * user and one host's agent running as its host user. Each case does what a
 * client, a host or a service role could try, asserts the refusal AND that nothing
 * changed (stream counts per subject, KV values, what services' subscribers saw, the
 * victim VPC still deciding), and does the legitimate action too, so that a
 * refusal cannot pass by accident.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { headers, nkeys, type Msg, type NatsConnection } from '@nats-io/transport-node';
import {
  ACCOUNT_LIMITS,
  DEFAULT_MAX_PAYLOAD,
  authorizeNatsHosts,
  limitFromEnv,
  connectNats,
  ensureLayout,
  putHosts,
  readHostRecord,
  readKafkaPartitions,
  runDir,
  startLocalNats,
  type LocalNats,
  type NatsCredentials,
} from '../../infra/index.js';
import {
  bucketOf,
  kafkaTopics,
  kvBuckets,
  southboundKeys,
  streams,
  subjects,
  type HostRecord,
} from '../../shared/index.js';
import type { Controller } from '../../services/controller/index.js';
import { startFleet, type Fleet } from '../../services/nca/fleet.js';
import { check } from '../../services/cli/check.js';
import { eventually, runCli, startTestController, testLog, within } from '../support/index.js';

const BUCKETS = 1024;

interface Ctx {
  server: LocalNats;
  credentials: NatsCredentials;
  service: NatsConnection;
  jsm: JetStreamManager;
  client: NatsConnection;
  controller: Controller;
  fleet: Fleet;
  open: NatsConnection[];
}

const host = (hostId: string, cluster: string, kafka?: string): HostRecord => ({
  hostId,
  region: 'r1',
  az: 'az1',
  dc: 'dc1',
  cluster,
  underlayIp: '10.0.0.1',
  binding: kafka ? { type: 'kafka', cluster: kafka } : { type: 'jetstream' },
});
/** The attacker host, its neighbour (whose agent runs), a Kafka-bound host elsewhere. */
const h1 = host('atk-h1', 'c1');
const h2 = host('atk-h2', 'c1');
const h3 = host('atk-h3', 'c2', 'ka');
const victim = 'atk-victim';

/** A connection that records the server's refusals (they arrive as async errors). */
interface Watched {
  nc: NatsConnection;
  refusals: string[];
}

async function as(ctx: Ctx, seedFile: string, inboxPrefix?: string): Promise<Watched> {
  const nc = await connectNats(ctx.server.url, {
    name: 'attacker',
    reconnect: false,
    nkeySeedFile: seedFile,
    ...(inboxPrefix ? { inboxPrefix } : {}),
  });
  ctx.open.push(nc);
  const refusals: string[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'error') refusals.push(s.error.message);
    }
  })();
  return { nc, refusals };
}

const asHost = (ctx: Ctx, h: HostRecord): Promise<Watched> =>
  as(ctx, ctx.credentials.hostSeedFile(h.hostId), subjects.hostInbox(h.hostId));

async function refused(w: Watched, what: string): Promise<void> {
  await w.nc.flush();
  await eventually(() => (w.refusals.some((r) => r.includes(`"${what}"`)) ? true : undefined), {
    what: `the server refusing ${what} (refusals: ${w.refusals.join('; ') || 'none'})`,
    timeoutMs: 3000,
  });
}

/** Messages stored on exactly `subject` in `stream`. */
async function onSubject(ctx: Ctx, stream: string, subject: string): Promise<number> {
  const info = await ctx.jsm.streams.info(stream, { subjects_filter: subject });
  return info.state.subjects?.[subject] ?? 0;
}

async function kvValue(ctx: Ctx, bucket: string, key: string): Promise<string> {
  const m = await ctx.jsm.direct.getMessage(`KV_${bucket}`, {
    last_by_subj: `$KV.${bucket}.${key}`,
  });
  return m ? `${m.seq}:${m.string()}` : 'none';
}

/**
 * Everything a foreign reply could hit: for each reply subject, where a landing
 * would show — the stream that captures it, or the KV key it would write.
 */
function targets(): Array<{ reply: string; stream?: string; kv?: [string, string] }> {
  const bucket = bucketOf(victim, BUCKETS);
  const kafkaKey = southboundKeys.kafkaPartitions('ka', kafkaTopics.cluster(h3));
  return [
    { reply: subjects.event(victim), stream: streams.events },
    { reply: subjects.intentMapped(bucket, victim), stream: streams.intents },
    { reply: subjects.goalStateHost(h3, h3.hostId), stream: streams.goalStates },
    { reply: subjects.goalStateHost(h2, h2.hostId), stream: streams.goalStates },
    { reply: subjects.goalStateMulticast(h1, victim), stream: streams.goalStates },
    { reply: subjects.status(victim), stream: streams.status },
    { reply: `$KV.${kvBuckets.hosts}.${h2.hostId}`, kv: [kvBuckets.hosts, h2.hostId] },
    { reply: `$KV.${kvBuckets.placement}.${kafkaKey}`, kv: [kvBuckets.placement, kafkaKey] },
  ];
}

/** What each target shows now: its stream's count on that subject, or its KV value. */
async function landings(ctx: Ctx): Promise<Record<string, string | number>> {
  const out: Record<string, string | number> = {};
  for (const t of targets()) {
    if (t.stream) out[t.reply] = await onSubject(ctx, t.stream, t.reply);
    if (t.kv) out[t.reply] = await kvValue(ctx, ...t.kv);
  }
  return out;
}

/** Service-side (ALCOR) subscribers on every target: what lands there is seen. */
function listen(ctx: Ctx): { seen: string[]; stop: () => void } {
  const seen: string[] = [];
  const subs = targets().map((t) =>
    ctx.service.subscribe(t.reply, {
      callback: (_e, m) => void seen.push(`${m.subject}: ${m.string().slice(0, 80)}`),
    }),
  );
  return { seen, stop: () => subs.forEach((s) => s.unsubscribe()) };
}

/**
 * Holds for `ms` that `read` keeps giving `expected` (a bounded window in which a
 * late landing would show), then returns.
 */
async function staysAt<T>(read: () => Promise<T>, expected: T, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    assert.equal(await read(), expected);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The sync API, as the demo client: one intent, its outcome. */
async function apply(ctx: Ctx, intent: object): Promise<{ outcome: string; revision?: number }> {
  const reply = await ctx.client.request(subjects.applyIntents, JSON.stringify(intent), {
    timeout: 20_000,
  });
  return reply.json<{ outcome: string; revision?: number }>();
}

let n = 0;
const portOn = (vpcId: string, hostId: string) => ({
  id: `atk-i${++n}`,
  kind: 'port.create',
  vpcId,
  spec: { portId: `p${n}`, subnetId: 's1', hostId },
});

async function createVpc(ctx: Ctx, vpcId: string): Promise<void> {
  for (const intent of [
    { id: `${vpcId}-c`, kind: 'vpc.create', vpcId, spec: { cidr: '10.1.0.0/16' } },
    {
      id: `${vpcId}-s`,
      kind: 'subnet.create',
      vpcId,
      spec: { subnetId: 's1', cidr: '10.1.1.0/24', gatewayIp: '10.1.1.1' },
    },
  ])
    assert.is((await apply(ctx, intent)).outcome, 'accepted');
}

const s = suite<Ctx>('attacks: no role acts with another’s authority (DESIGN §9)');

s.before(async (ctx) => {
  ctx.open = [];
  ctx.server = await startLocalNats({
    dir: runDir('alcor-attacks-'),
    bucketCount: BUCKETS,
    auth: true,
  });
  ctx.credentials = ctx.server.credentials!;
  await authorizeNatsHosts(ctx.server.url, ctx.credentials.dir, [h1, h2, h3]);
  ctx.service = await connectNats(ctx.server.url, {
    name: 'attacks-service',
    nkeySeedFile: ctx.credentials.roleSeedFile('service'),
  });
  ctx.jsm = await jetstreamManager(ctx.service);
  await ensureLayout(ctx.service, ctx.jsm);
  await putHosts(ctx.service, [h1, h2, h3]);
  ctx.client = await connectNats(ctx.server.url, {
    name: 'attacks-client',
    nkeySeedFile: ctx.credentials.roleSeedFile('client'),
  });
  ctx.controller = await startTestController(ctx.server.url, {
    nkeySeedFile: ctx.credentials.roleSeedFile('controller'),
    programmedDeadlineMs: 5000,
  });
  // The neighbour's agent, as its own host user (it acks, so intents get programmed).
  ctx.fleet = await startFleet({
    natsUrl: ctx.server.url,
    hosts: [h2.hostId],
    hostCredentials: ctx.credentials.hostsDir,
    logger: testLog,
    fleetId: 'attacks',
  });
  await createVpc(ctx, victim);
  assert.is((await apply(ctx, portOn(victim, h2.hostId))).outcome, 'accepted');
  // The neighbour joined the VPC: its agent looks at the VPC's multicast again a
  // second later (it would ask for the VPC if a newer one were stored). Done before
  // the attacks count what lands.
  await eventually(() => (ctx.fleet.totals().joinsLooked >= 1 ? true : undefined), {
    what: "the neighbour's looks at the VPC's multicast done",
  });
});

s.after(async (ctx) => {
  await ctx.fleet?.stop();
  await ctx.controller?.stop();
  for (const nc of [...ctx.open, ctx.client, ctx.service]) await nc?.close().catch(() => undefined);
  await ctx.server.stop();
});

s('no key, or a key the server does not know, cannot connect', async (ctx) => {
  const stranger = join(runDir('alcor-attacks-stranger-'), 'stranger.nk');
  writeFileSync(stranger, nkeys.createUser().getSeed());
  for (const seed of [undefined, stranger]) {
    let error: Error | undefined;
    try {
      // An empty seed file path means no credentials at all.
      await connectNats(ctx.server.url, {
        name: 'intruder',
        reconnect: false,
        nkeySeedFile: seed ?? '',
      });
    } catch (err) {
      error = err as Error;
    }
    assert.ok(error, `connected with ${seed ?? 'no key'}`);
    assert.match(error.message, /Authorization Violation/, error.message);
  }
});

s('a client publishes intent.<vpcId>, stored under its bucket; nothing internal', async (ctx) => {
  const client = await as(ctx, ctx.credentials.roleSeedFile('client'));
  const vpcId = 'atk-client-1';
  const ack = await jetstream(client.nc).publish(
    subjects.intent(vpcId),
    JSON.stringify({ id: 'atk-c-1', kind: 'vpc.delete', vpcId, spec: {} }),
    { msgID: 'atk-c-1' },
  );
  const stored = await ctx.jsm.streams.getMessage(streams.intents, { seq: ack.seq });
  assert.is(stored!.subject, subjects.intentMapped(bucketOf(vpcId, BUCKETS), vpcId));
  assert.equal(client.refusals, []);

  const before = await landings(ctx);
  for (const subject of [
    subjects.intentMapped(7, victim),
    subjects.event(victim),
    subjects.goalStateHost(h1, h1.hostId),
    subjects.status(victim),
    subjects.ack(7, victim, h1.hostId),
    `$KV.${kvBuckets.hosts}.${h1.hostId}`,
  ]) {
    client.nc.publish(subject, '{}');
    await refused(client, subject);
  }
  client.nc.subscribe('gs.>');
  await refused(client, 'gs.>');
  assert.equal(await landings(ctx), before);
});

s('a client reaches the sync API and statuses across the accounts', async (ctx) => {
  const statuses: string[] = [];
  const sub = ctx.client.subscribe(subjects.status(victim), {
    callback: (_e, m) => void statuses.push(m.json<{ outcome: string }>().outcome),
  });
  await ctx.client.flush();
  assert.is((await apply(ctx, portOn(victim, h2.hostId))).outcome, 'accepted');
  await eventually(() => (statuses.includes('programmed') ? true : undefined), {
    what: 'accepted and programmed on status across the accounts',
  });
  sub.unsubscribe();
});

s('an NCA host reads its own subjects and records, no one else’s', async (ctx) => {
  const nca = await asHost(ctx, h1);
  const got: string[] = [];
  const record = (_err: Error | null, msg: Msg): void => void got.push(msg.subject);
  nca.nc.subscribe(subjects.goalStateHost(h1, h1.hostId), { callback: record });
  nca.nc.subscribe(subjects.goalStateMulticast(h1, 'atk-vpc-4'), { callback: record });
  await nca.nc.flush();
  ctx.service.publish(subjects.goalStateHost(h1, h1.hostId), '{}');
  ctx.service.publish(subjects.goalStateMulticast(h1, 'atk-vpc-4'), '{}');
  await eventually(() => (got.length === 2 ? true : undefined), { what: 'own messages' });

  for (const subject of [
    subjects.goalStateHost(h2, h2.hostId), // a neighbour in the same cluster
    subjects.goalStateMulticast(h3, 'atk-vpc-4'), // another cluster's multicast
    'gs.>',
    subjects.acksAll,
    '_INBOX.>', // others' replies (a resync answer carries full VPC states)
    subjects.hostInbox(h2.hostId) + '.>',
    subjects.ncaState(h2.hostId),
    subjects.eventsAll,
  ]) {
    nca.nc.subscribe(subject);
    await refused(nca, subject);
  }

  // Its own record and its cluster's last multicast, read as itself…
  const jsm = await jetstreamManager(nca.nc, { checkAPI: false });
  const own = await readHostRecord(jsm, h1.hostId);
  assert.equal(own, { ok: true, value: h1 });
  const mine = subjects.goalStateMulticast(h1, 'atk-vpc-4');
  assert.is(
    (await jsm.direct.getMessage(streams.goalStates, { last_by_subj: mine }))?.subject,
    mine,
  );
  // …and not a neighbour's record, nor another cluster's multicast.
  await readHostRecord(jsm, h2.hostId).catch(() => undefined);
  await refused(nca, `$JS.API.DIRECT.GET.KV_hosts.$KV.hosts.${h2.hostId}`);
  const other = subjects.goalStateMulticast(h3, 'atk-vpc-4');
  await jsm.direct.getMessage(streams.goalStates, { last_by_subj: other }).catch(() => undefined);
  await refused(nca, `$JS.API.DIRECT.GET.${streams.goalStates}.${other}`);

  // A Kafka-bound host reads its own topic's partition table, and not another's.
  const kafkaHost = await asHost(ctx, h3);
  const kjsm = await jetstreamManager(kafkaHost.nc, { checkAPI: false });
  assert.equal((await readKafkaPartitions(kjsm, 'ka', h3)).hosts, []);
  await readKafkaPartitions(kjsm, 'ka', h1).catch(() => undefined);
  await refused(
    kafkaHost,
    `$JS.API.DIRECT.GET.KV_placement.$KV.placement.${southboundKeys.kafkaPartitions('ka', kafkaTopics.cluster(h1))}`,
  );
});

s('an NCA host acks and resyncs only as itself, and writes nothing else', async (ctx) => {
  const nca = await asHost(ctx, h1);
  const ackSubject = subjects.ack(bucketOf(victim, BUCKETS), victim, h1.hostId);
  const before = await onSubject(ctx, streams.acks, ackSubject);
  nca.nc.publish(
    ackSubject,
    JSON.stringify({ hostId: h1.hostId, vpcId: victim, revision: 1, status: 'applied' }),
  );
  // Answered by the running controller (it owns every bucket).
  const answer = await nca.nc.request(
    subjects.resync(h1.hostId),
    JSON.stringify({ hostId: h1.hostId }),
    {
      timeout: 5000,
    },
  );
  assert.is(answer.json<{ hostId: string }>().hostId, h1.hostId);
  await eventually(
    async () =>
      (await onSubject(ctx, streams.acks, ackSubject)) === before + 1 ? true : undefined,
    {
      what: 'its own ack stored',
    },
  );

  const landed = await landings(ctx);
  for (const subject of [
    subjects.ack(3, victim, h2.hostId), // an ack in another host's name
    subjects.resync(h2.hostId),
    subjects.intent(victim),
    subjects.intentMapped(3, victim),
    subjects.event(victim),
    subjects.goalStateMulticast(h1, victim),
    subjects.status(victim),
    subjects.applyIntents,
    `$KV.${kvBuckets.placement}.${southboundKeys.kafkaPartitions('ka', kafkaTopics.cluster(h3))}`,
    `$JS.API.STREAM.DELETE.${streams.events}`,
  ]) {
    nca.nc.publish(subject, '{}');
    await refused(nca, subject);
  }
  assert.equal(await landings(ctx), landed);
});

s(
  'no reply a host names lands in ALCOR or on another host: every subject it may use',
  async (ctx) => {
    const nca = await asHost(ctx, h1);
    const kafkaHost = await asHost(ctx, h3);
    const bucket = bucketOf(victim, BUCKETS);
    // Every subject a host may publish to (hostSubjects), with a body the service
    // answers: the controller (resync), JetStream (ack capture, direct gets).
    const own = (h: HostRecord) => [
      {
        subject: subjects.ack(bucket, victim, h.hostId),
        body: JSON.stringify({ hostId: h.hostId, vpcId: victim, revision: 1, status: 'applied' }),
      },
      {
        subject: subjects.resync(h.hostId),
        body: JSON.stringify({ hostId: h.hostId, vpcIds: [victim] }),
      },
      {
        subject: `$JS.API.DIRECT.GET.${streams.goalStates}.${subjects.goalStateMulticast(h, victim)}`,
        body: '',
      },
      {
        subject: `$JS.API.DIRECT.GET.KV_${kvBuckets.hosts}.$KV.${kvBuckets.hosts}.${h.hostId}`,
        body: '',
      },
    ];
    const kafkaKey = southboundKeys.kafkaPartitions('ka', kafkaTopics.cluster(h3));
    const attacks = [
      ...own(h1).map((a) => ({ ...a, from: nca })),
      // (not its resync: answered, it stores h3's own full states on its own subject)
      ...own(h3)
        .filter((a) => a.subject !== subjects.resync(h3.hostId))
        .map((a) => ({ ...a, from: kafkaHost })),
      {
        subject: `$JS.API.DIRECT.GET.KV_${kvBuckets.placement}.$KV.${kvBuckets.placement}.${kafkaKey}`,
        body: '',
        from: kafkaHost,
      },
    ];
    // Something real to copy: a multicast stored for h1's cluster.
    await jetstream(ctx.service).publish(subjects.goalStateMulticast(h1, victim), '{"real":1}');

    const before = await landings(ctx);
    const totals = async () =>
      Promise.all(
        [streams.events, streams.intents, streams.status].map(
          async (x) => (await ctx.jsm.streams.info(x)).state.messages,
        ),
      );
    const totalsBefore = await totals();
    const agentBefore = { ...ctx.fleet.hosts.get(h2.hostId)!.stats };
    const modelBefore = JSON.stringify([...ctx.fleet.hosts.get(h2.hostId)!.model.vpcs.keys()]);
    const watch = listen(ctx);
    await ctx.service.flush();
    for (const a of attacks) {
      for (const t of targets()) a.from.nc.publish(a.subject, a.body, { reply: t.reply });
    }
    await Promise.all([nca.nc.flush(), kafkaHost.nc.flush()]);
    assert.equal(
      nca.refusals,
      [],
      'the attacks are legitimate publishes; only their replies are foreign',
    );

    // Positive control: the same subjects with the host's own inbox are answered.
    const resync = await nca.nc.request(
      subjects.resync(h1.hostId),
      JSON.stringify({ hostId: h1.hostId, vpcIds: [victim] }),
      { timeout: 5000 },
    );
    assert.is(resync.json<{ hostId: string }>().hostId, h1.hostId);
    const njsm = await jetstreamManager(nca.nc, { checkAPI: false });
    assert.is(
      (
        await njsm.direct.getMessage(streams.goalStates, {
          last_by_subj: subjects.goalStateMulticast(h1, victim),
        })
      )?.string(),
      '{"real":1}',
    );

    // Nothing landed: not in EVENTS, INTENTS, GOALSTATES, STATUS or KV; no service
    // subscriber saw it; the neighbour's agent refused what reached its subject.
    await staysAt(() => landings(ctx), before, 1500);
    assert.equal(await totals(), totalsBefore);
    watch.stop();
    assert.equal(watch.seen, []);
    const agent = ctx.fleet.hosts.get(h2.hostId)!;
    assert.is(agent.stats.applied, agentBefore.applied, 'the neighbour applied nothing forged');
    assert.ok(
      agent.stats.invalid > agentBefore.invalid,
      'the forged replies reached h2 and were refused',
    );
    assert.is(JSON.stringify([...agent.model.vpcs.keys()]), modelBefore);

    // The victim VPC still decides, and its host still programs.
    assert.is((await apply(ctx, portOn(victim, h2.hostId))).outcome, 'accepted');
  },
);

s('no reply a client names lands in ALCOR: intent.<vpcId> and the sync API', async (ctx) => {
  const client = await as(ctx, ctx.credentials.roleSeedFile('client'));
  const vpcId = 'atk-client-2';
  const before = await landings(ctx);
  const watch = listen(ctx);
  let k = 0;
  for (const t of targets()) {
    const id = `atk-cr-${++k}`;
    client.nc.publish(
      subjects.intent(vpcId),
      JSON.stringify({ id, kind: 'vpc.delete', vpcId, spec: {} }),
      {
        reply: t.reply,
        headers: (() => {
          const h = headers();
          h.set('Nats-Msg-Id', id);
          return h;
        })(),
      },
    );
    client.nc.publish(
      subjects.applyIntents,
      JSON.stringify({ id: `${id}-sync`, kind: 'vpc.delete', vpcId, spec: {} }),
      { reply: t.reply },
    );
  }
  await client.nc.flush();
  assert.equal(client.refusals, []);
  // Positive control: the same two ways in, answered on the client's inbox.
  const ack = await jetstream(client.nc).publish(
    subjects.intent(vpcId),
    JSON.stringify({ id: 'atk-cr-ok', kind: 'vpc.delete', vpcId, spec: {} }),
    { msgID: 'atk-cr-ok' },
  );
  assert.is(ack.stream, streams.intents);
  const reply = await client.nc.request(
    subjects.applyIntents,
    JSON.stringify({ id: 'atk-cr-ok2', kind: 'vpc.delete', vpcId, spec: {} }),
    { timeout: 20_000 },
  );
  assert.ok(['accepted', 'rejected'].includes(reply.json<{ outcome: string }>().outcome));

  await staysAt(() => landings(ctx), before, 1500);
  watch.stop();
  assert.equal(watch.seen, []);
  assert.is((await apply(ctx, portOn(victim, h2.hostId))).outcome, 'accepted');
});

s('a host answering a goal state’s reply cannot forge the publisher’s ack', async (ctx) => {
  const nca = await asHost(ctx, h1);
  let answered = false;
  nca.nc.subscribe(subjects.goalStateHost(h1, h1.hostId), {
    callback: (_e, m) => {
      answered = m.respond('FORGED');
    },
  });
  await nca.nc.flush();
  const replies: string[] = [];
  const it = await ctx.service.requestMany(subjects.goalStateHost(h1, h1.hostId), '{"gs":1}', {
    strategy: 'timer',
    maxWait: 1500,
  });
  for await (const m of it) replies.push(m.string());
  assert.ok(answered, 'the host received the goal state and answered its reply subject');
  assert.is(replies.length, 1, replies.join(' | '));
  assert.match(replies[0]!, `"stream":"${streams.goalStates}"`);
});

s(
  'a message in EVENTS that is not a commit is reported and passed over, never a wedge',
  async (ctx) => {
    const vpcId = 'atk-poison';
    await createVpc(ctx, vpcId);
    assert.is((await apply(ctx, portOn(vpcId, h2.hostId))).outcome, 'accepted');
    // As the service role (only controllers may write EVENTS): not JSON, not a commit,
    // and a commit of another VPC.
    const js = jetstream(ctx.service);
    const [notJson, ...rest] = [
      'not json',
      '{"type":"io.nats.jetstream.api.v1.pub_ack","stream":"EVENTS","seq":1}',
      JSON.stringify({
        intentId: 'x',
        kind: 'vpc.delete',
        vpcId: victim,
        cursor: 1,
        at: new Date().toISOString(),
        events: [{ type: 'VpcDeleted' }],
      }),
    ];
    const poison = [(await js.publish(subjects.event(vpcId), notJson)).seq];
    // The running actor decides the next intent after the poison (its append
    // conflicts, it reads the log again and passes over what is not a commit)…
    const first = await apply(ctx, portOn(vpcId, h2.hostId));
    assert.is(first.outcome, 'accepted');
    assert.ok(first.revision! > poison[0]!, `revision ${first.revision} after the poison`);
    assert.is(ctx.controller.metrics.poisonEvents, 1);
    // …and so does a fresh one hydrating through more of it (its snapshot was
    // taken at the handoff, before them).
    await ctx.controller.stop();
    for (const data of rest) poison.push((await js.publish(subjects.event(vpcId), data)).seq);
    ctx.controller = await startTestController(ctx.server.url, {
      nkeySeedFile: ctx.credentials.roleSeedFile('controller'),
      programmedDeadlineMs: 5000,
    });
    const next = await apply(ctx, portOn(vpcId, h2.hostId));
    assert.is(next.outcome, 'accepted');
    assert.ok(next.revision! > poison.at(-1)!, `revision ${next.revision} after the poison`);
    assert.is(ctx.controller.metrics.poisonEvents, 2);
    // `alcor check --full` names each, and the fold passes over them like the actor.
    const report = await within(20_000, 'alcor check', check(ctx.service, { vpcId, full: true }));
    assert.equal(
      report.poison.map((p) => [p.vpcId, p.revision, p.error.code]),
      [
        [vpcId, poison[0], 'invalid_json'],
        [vpcId, poison[1], report.poison[1]!.error.code],
        [vpcId, poison[2], 'wrong_stream'],
      ],
    );
    // From the snapshot (taken at the handoff, after the first), those after it.
    const fast = await within(20_000, 'alcor check', check(ctx.service, { vpcId }));
    assert.equal(
      fast.poison.map((p) => p.revision),
      poison.slice(1),
    );
    assert.equal([fast.fold.fromSnapshot, fast.diverged, fast.silent], [1, [], report.silent]);
    // h2 (its agent runs) holds what the log says; h1 and h3 run no agent here.
    assert.equal(report.diverged, []);
    assert.equal(report.silent, [h1.hostId, h3.hostId]);
    // Positive control: the other VPCs never saw any of it.
    assert.is((await apply(ctx, portOn(victim, h2.hostId))).outcome, 'accepted');
  },
);

s(
  'each service role writes only its own: controllers events, southbound the Kafka table',
  async (ctx) => {
    const controller = await as(ctx, ctx.credentials.roleSeedFile('controller'));
    const southbound = await as(ctx, ctx.credentials.roleSeedFile('southbound'));
    const kafkaKey = southboundKeys.kafkaPartitions('ka', kafkaTopics.cluster(h3));
    const landed = await landings(ctx);
    for (const subject of [
      `$JS.API.STREAM.DELETE.${streams.events}`,
      `$JS.API.STREAM.PURGE.${streams.events}`,
      `$JS.API.STREAM.MSG.DELETE.${streams.events}`,
      `$KV.${kvBuckets.hosts}.${h2.hostId}`,
      `$KV.${kvBuckets.placement}.${kafkaKey}`,
      subjects.ack(1, victim, h2.hostId),
    ]) {
      controller.nc.publish(subject, '{}');
      await refused(controller, subject);
    }
    for (const subject of [
      subjects.event(victim),
      subjects.goalStateHost(h2, h2.hostId),
      subjects.status(victim),
      subjects.intentMapped(1, victim),
      `$KV.${kvBuckets.hosts}.${h2.hostId}`,
      `$JS.API.STREAM.DELETE.${streams.goalStates}`,
    ]) {
      southbound.nc.publish(subject, '{}');
      await refused(southbound, subject);
    }
    assert.equal(await landings(ctx), landed);
    assert.is((await ctx.jsm.streams.info(streams.events)).config.name, streams.events);
    // Positive controls: the Kafka partition table is the southbound's to write, and
    // the controller appends (the victim still decides, through the running one).
    const put = await jetstream(southbound.nc).publish(
      `$KV.${kvBuckets.placement}.${kafkaKey}`,
      JSON.stringify({ hosts: [h3.hostId] }),
    );
    assert.ok(put.seq > 0);
    assert.is((await apply(ctx, portOn(victim, h2.hostId))).outcome, 'accepted');
    assert.equal(southbound.refusals.filter((r) => r.includes('$KV.placement')).length, 0);
  },
);

s('a host is held to its limits: subscriptions and payload', async (ctx) => {
  const nca = await asHost(ctx, h1);
  const limit = ACCOUNT_LIMITS.hosts.maxSubscriptions;
  // Positive control: subscriptions up to the limit (its multicast subjects) work.
  for (let i = 0; i < limit + 50; i++)
    nca.nc.subscribe(subjects.goalStateMulticast(h1, `atk-many-${i}`));
  await nca.nc.flush().catch(() => undefined);
  await eventually(
    () => (nca.refusals.some((r) => /maximum subscriptions exceeded/i.test(r)) ? true : undefined),
    {
      what: 'the subscription limit',
    },
  );
  const connz = (await (
    await fetch(`${ctx.server.monitorUrl}/connz?auth=true&limit=1024`)
  ).json()) as {
    connections: Array<{ name?: string; subscriptions: number; authorized_user?: string }>;
  };
  const mine = connz.connections.filter((c) => c.name === 'attacker');
  assert.ok(mine.length > 0);
  assert.ok(
    mine.every((c) => c.subscriptions <= limit),
    JSON.stringify(mine.map((c) => c.subscriptions)),
  );

  // The server tells each host connection its payload limit, and holds it to it.
  const big = await asHost(ctx, h1);
  const ack = subjects.ack(bucketOf(victim, BUCKETS), victim, h1.hostId);
  // The account's limit, or the server's when that is lower (npm run test:limits).
  const hostLimit = Math.min(
    ACCOUNT_LIMITS.hosts.maxPayload,
    limitFromEnv('ALCOR_NATS_MAX_PAYLOAD') ?? DEFAULT_MAX_PAYLOAD,
  );
  assert.is(big.nc.info?.max_payload, hostLimit);
  assert.throws(() => big.nc.publish(ack, new Uint8Array(hostLimit + 1)), /max_payload/);
  // Positive control: an ordinary ack goes through a fresh connection.
  const ok = await asHost(ctx, h1);
  const before = await onSubject(ctx, streams.acks, ack);
  ok.nc.publish(
    ack,
    JSON.stringify({ hostId: h1.hostId, vpcId: victim, revision: 1, status: 'applied' }),
  );
  await eventually(
    async () => ((await onSubject(ctx, streams.acks, ack)) === before + 1 ? true : undefined),
    {
      what: 'an ordinary ack stored',
    },
  );
});

s('the operator role reads what alcor shows and writes nothing; its context works', async (ctx) => {
  const operator = ctx.credentials.roleSeedFile('operator');
  const service = ctx.credentials.roleSeedFile('service');
  const env = { ALCOR_CONFIG_DIR: runDir('alcor-attacks-config-') };
  const asOperator = (args: string[], stdin?: string) =>
    runCli(['--nats-url', ctx.server.url, '--nkey', operator, ...args], env, stdin);
  const intent = JSON.stringify(portOn(victim, h2.hostId));
  // Reads: every inspecting command, with no refusal.
  for (const args of [
    ['status', victim],
    ['vpc', 'show', victim],
    ['replay', 'vpc', victim],
    ['replay', 'host', h2.hostId],
    ['trace', `${victim}-c`],
    ['hosts', '--vpc', victim],
    ['check', '--vpc', victim],
    ['topology', 'show', '--hosts'],
  ]) {
    const r = await asOperator(args);
    assert.ok([0, 4].includes(r.code), `${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    assert.not.match(r.stderr, /refused|Permissions/i, args.join(' '));
  }
  // Writes: refused by the server, in one line, exit 5; the same as `service` works.
  const applied = await asOperator(['apply', '-f', '-'], intent);
  assert.is(applied.code, 5, applied.stdout + applied.stderr);
  assert.match(applied.stderr, /^alcor: the NATS at .* refused it .*operator role reads only/);
  assert.is(applied.stderr.trim().split('\n').length, 1);
  const file = join(env.ALCOR_CONFIG_DIR, 'hosts.json');
  writeFileSync(file, JSON.stringify([{ ...h1, underlayIp: '10.0.0.99' }]));
  const loaded = await asOperator(['topology', 'load', '-f', file]);
  assert.is(loaded.code, 5, loaded.stdout + loaded.stderr);
  const kept = await readHostRecord(ctx.jsm, h1.hostId);
  assert.is(kept?.ok && kept.value.underlayIp, '10.0.0.1', 'the registry is unchanged');
  const control = await runCli(
    ['--nats-url', ctx.server.url, '--nkey', service, 'apply', '-f', '-'],
    env,
    intent,
  );
  assert.is(control.code, 0, control.stdout + control.stderr);
  // Underneath: the services' stream, consumers and buckets are out of its reach.
  const w = await as(ctx, operator);
  const before = await landings(ctx);
  // (intent.<vpc> is checked as the server maps it: intent.<bucket>.<vpc>.)
  for (const subject of [
    subjects.intentMapped(bucketOf(victim, BUCKETS), victim),
    subjects.event(victim),
    `$KV.${kvBuckets.hosts}.${h1.hostId}`,
    `$JS.API.STREAM.DELETE.${streams.events}`,
    `$JS.API.CONSUMER.CREATE.${streams.intents}.stolen`,
    `$JS.API.CONSUMER.DELETE.${streams.intents}.x`,
  ]) {
    w.nc.publish(subject, '{}');
    await refused(w, subject);
  }
  assert.equal(await landings(ctx), before);
  // Its context: saved once, then chosen by name; without a key the server refuses.
  const added = await runCli(
    ['context', 'add', 'ops', '--nats-url', ctx.server.url, '--nkey', operator],
    env,
  );
  assert.is(added.code, 0, added.stderr);
  const byName = await runCli(['--context', 'ops', 'status', victim], env);
  assert.ok([0, 4].includes(byName.code), byName.stderr);
  const bare = await runCli(['--nats-url', ctx.server.url, 'status', victim], env);
  assert.is(bare.code, 5, bare.stderr);
  assert.match(
    bare.stderr,
    /refused the connection .*--creds <file>, --nkey <file> or a --context/,
  );
});

s.run();
