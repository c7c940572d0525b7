/**
 * DESIGN §9 on a real nats-server with accounts and users per role (issue 9): each
 * case does what an attacker or a buggy client would, and asserts that the server
 * refuses it — and that what the role may do still works. The server is this
 * suite's own, started with auth, so the suite means the same under any runner.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { nkeys, type NatsConnection } from '@nats-io/transport-node';
import {
  authorizeNatsHosts,
  connectNats,
  ensureLayout,
  runDir,
  startLocalNats,
  type LocalNats,
  type NatsCredentials,
} from '../../infra/index.js';
import { bucketOf, streams, subjects, type HostRecord } from '../../shared/index.js';
import { eventually } from '../support/eventually.js';

interface Ctx {
  server: LocalNats;
  credentials: NatsCredentials;
  service: NatsConnection;
  jsm: JetStreamManager;
  open: NatsConnection[];
}

const host = (hostId: string, cluster: string): HostRecord => ({
  hostId,
  region: 'r1',
  az: 'az1',
  dc: 'dc1',
  cluster,
  underlayIp: '10.0.0.1',
  binding: { type: 'jetstream' },
});
const h1 = host('sec-h1', 'c1');
const h2 = host('sec-h2', 'c1');
const h3 = host('sec-h3', 'c2');

/** A connection that records the server's refusals (they arrive as async errors). */
interface Watched {
  nc: NatsConnection;
  refusals: string[];
}

async function as(ctx: Ctx, seedFile: string, inboxPrefix?: string): Promise<Watched> {
  const nc = await connectNats(ctx.server.url, {
    name: 'security-test',
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

async function refused(w: Watched, what: string): Promise<void> {
  await w.nc.flush();
  await eventually(() => (w.refusals.some((r) => r.includes(`"${what}"`)) ? true : undefined), {
    what: `the server refusing ${what} (refusals: ${w.refusals.join('; ') || 'none'})`,
    timeoutMs: 3000,
  });
}

/**
 * The subject the server checks a publish against: in the ALCOR account its mapping
 * runs first, so `intent.<vpc>` is checked (and refused) as `intent.<bucket>.<vpc>`.
 */
function asChecked(subject: string): string {
  const [head, vpcId, ...rest] = subject.split('.');
  return head === 'intent' && vpcId && rest.length === 0
    ? subjects.intentMapped(bucketOf(vpcId, 1024), vpcId)
    : subject;
}

async function streamMessages(ctx: Ctx, stream: string): Promise<number> {
  return (await ctx.jsm.streams.info(stream)).state.messages;
}

const s = suite<Ctx>('NATS accounts and permissions (DESIGN §9)');

s.before(async (ctx) => {
  ctx.server = await startLocalNats({
    dir: runDir('alcor-security-'),
    bucketCount: 1024,
    auth: true,
  });
  ctx.credentials = ctx.server.credentials!;
  await authorizeNatsHosts(ctx.server.url, ctx.credentials.dir, [h1, h2, h3]);
  ctx.open = [];
  ctx.service = await connectNats(ctx.server.url, {
    name: 'security-service',
    nkeySeedFile: ctx.credentials.roleSeedFile('service'),
  });
  ctx.jsm = await jetstreamManager(ctx.service);
  await ensureLayout(ctx.service, ctx.jsm);
});

s.after(async (ctx) => {
  for (const nc of [...ctx.open, ctx.service]) await nc.close().catch(() => undefined);
  await ctx.server.stop();
});

s('no key, or a key the server does not know, cannot connect', async (ctx) => {
  const stranger = join(runDir('alcor-security-stranger-'), 'stranger.nk');
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

s('a client publishes intent.<vpcId>; the server stores it under its bucket', async (ctx) => {
  const client = await as(ctx, ctx.credentials.roleSeedFile('client'));
  const vpcId = 'sec-vpc-1';
  const ack = await jetstream(client.nc).publish(
    subjects.intent(vpcId),
    JSON.stringify({ id: 'sec-1', kind: 'vpc.delete', vpcId, spec: {} }),
    { msgID: 'sec-1' },
  );
  assert.is(ack.stream, streams.intents);
  const stored = await ctx.jsm.streams.getMessage(streams.intents, { seq: ack.seq });
  assert.is(stored!.subject, subjects.intentMapped(bucketOf(vpcId, 1024), vpcId));
  assert.equal(client.refusals, []);
});

s('a client cannot write intent.<bucket>.<vpc>, evt.> or goal states directly', async (ctx) => {
  const client = await as(ctx, ctx.credentials.roleSeedFile('client'));
  const before = {
    intents: await streamMessages(ctx, streams.intents),
    events: await streamMessages(ctx, streams.events),
    goalStates: await streamMessages(ctx, streams.goalStates),
  };
  const wrongBucket = subjects.intentMapped(7, 'sec-vpc-2');
  client.nc.publish(wrongBucket, '{}');
  await refused(client, wrongBucket);
  client.nc.publish(subjects.event('sec-vpc-2'), '{}');
  await refused(client, subjects.event('sec-vpc-2'));
  client.nc.publish(subjects.goalStateHost(h1, h1.hostId), '{}');
  await refused(client, subjects.goalStateHost(h1, h1.hostId));
  client.nc.publish(subjects.ack(7, 'sec-vpc-2', h1.hostId), '{}');
  await refused(client, subjects.ack(7, 'sec-vpc-2', h1.hostId));
  client.nc.subscribe('gs.>');
  await refused(client, 'gs.>');
  assert.equal(
    {
      intents: await streamMessages(ctx, streams.intents),
      events: await streamMessages(ctx, streams.events),
      goalStates: await streamMessages(ctx, streams.goalStates),
    },
    before,
  );
});

s('a client reaches the sync API and reads status across the accounts', async (ctx) => {
  const client = await as(ctx, ctx.credentials.roleSeedFile('client'));
  const api = ctx.service.subscribe(subjects.applyIntents, {
    callback: (_err, msg) => void msg.respond(`seen ${msg.string()}`),
  });
  const statuses: string[] = [];
  client.nc.subscribe(subjects.status('sec-vpc-3'), {
    callback: (_err, msg) => void statuses.push(msg.string()),
  });
  await client.nc.flush();
  await ctx.service.flush();
  const reply = await client.nc.request(subjects.applyIntents, 'one', { timeout: 3000 });
  assert.is(reply.string(), 'seen one');
  ctx.service.publish(subjects.status('sec-vpc-3'), 'decided');
  await eventually(() => (statuses.length > 0 ? true : undefined), { what: 'status' });
  assert.equal(statuses, ['decided']);
  api.unsubscribe();
});

s('an NCA host reads its own subjects and its cluster multicasts, no one else’s', async (ctx) => {
  const nca = await as(ctx, ctx.credentials.hostSeedFile(h1.hostId), subjects.hostInbox(h1.hostId));
  const got: string[] = [];
  const record = (_err: Error | null, msg: { subject: string }): void => {
    got.push(msg.subject);
  };
  nca.nc.subscribe(subjects.goalStateHost(h1, h1.hostId), { callback: record });
  nca.nc.subscribe(subjects.goalStateMulticast(h1, 'sec-vpc-4'), { callback: record });
  await nca.nc.flush();
  ctx.service.publish(subjects.goalStateHost(h1, h1.hostId), '{}');
  ctx.service.publish(subjects.goalStateMulticast(h1, 'sec-vpc-4'), '{}');
  await eventually(() => (got.length === 2 ? true : undefined), { what: 'own messages' });

  for (const subject of [
    subjects.goalStateHost(h2, h2.hostId), // a neighbour in the same cluster
    subjects.goalStateMulticast(h3, 'sec-vpc-4'), // another cluster's multicast
    'gs.>',
    subjects.acksAll,
    '_INBOX.>', // others' replies (a resync answer carries full VPC states)
    subjects.hostInbox(h2.hostId) + '.>',
    subjects.eventsAll,
  ]) {
    nca.nc.subscribe(subject);
    await refused(nca, subject);
  }
  assert.equal(nca.refusals.length, 7, nca.refusals.join('\n'));

  // The catch-up check reads the last stored multicast of its own cluster only.
  const js = await jetstreamManager(nca.nc, { checkAPI: false });
  const own = subjects.goalStateMulticast(h1, 'sec-vpc-4');
  const last = await js.direct.getMessage(streams.goalStates, { last_by_subj: own });
  assert.is(last?.subject, own);
  const other = subjects.goalStateMulticast(h3, 'sec-vpc-4');
  await js.direct.getMessage(streams.goalStates, { last_by_subj: other }).catch(() => undefined);
  await refused(nca, `$JS.API.DIRECT.GET.${streams.goalStates}.${other}`);
});

s('an NCA host acks and resyncs only as itself, and cannot publish intents', async (ctx) => {
  const nca = await as(ctx, ctx.credentials.hostSeedFile(h1.hostId), subjects.hostInbox(h1.hostId));
  const acks: string[] = [];
  ctx.service.subscribe(subjects.acksAll, { callback: (_e, m) => void acks.push(m.subject) });
  const resync = ctx.service.subscribe(subjects.resyncAll, {
    callback: (_e, m) => void m.respond(`full for ${m.subject}`),
  });
  await ctx.service.flush();

  nca.nc.publish(subjects.ack(3, 'sec-vpc-5', h1.hostId), '{}');
  const answer = await nca.nc.request(subjects.resync(h1.hostId), '{}', { timeout: 3000 });
  assert.is(answer.string(), `full for ${subjects.resync(h1.hostId)}`);
  await eventually(() => (acks.length === 1 ? true : undefined), { what: 'own ack' });

  const before = await streamMessages(ctx, streams.intents);
  for (const subject of [
    subjects.ack(3, 'sec-vpc-5', h2.hostId), // an ack in another host's name
    subjects.resync(h2.hostId),
    subjects.intent('sec-vpc-5'),
    subjects.intentMapped(3, 'sec-vpc-5'),
    subjects.event('sec-vpc-5'),
    subjects.goalStateMulticast(h1, 'sec-vpc-5'),
    subjects.applyIntents,
  ]) {
    nca.nc.publish(subject, '{}');
    await refused(nca, asChecked(subject));
  }
  assert.is(await streamMessages(ctx, streams.intents), before);
  assert.equal(acks, [subjects.ack(3, 'sec-vpc-5', h1.hostId)]);
  resync.unsubscribe();
});

s('the fleet harness user cannot write intents, events or streams', async (ctx) => {
  const fleet = await as(ctx, ctx.credentials.roleSeedFile('fleet'));
  for (const subject of [subjects.intent('sec-vpc-6'), subjects.event('sec-vpc-6')]) {
    fleet.nc.publish(subject, '{}');
    await refused(fleet, asChecked(subject));
  }
  const deleteStream = `$JS.API.STREAM.DELETE.${streams.events}`;
  fleet.nc.publish(deleteStream, '');
  await refused(fleet, deleteStream);
  assert.ok((await ctx.jsm.streams.info(streams.events)).config.name === streams.events);
});

s.run();
