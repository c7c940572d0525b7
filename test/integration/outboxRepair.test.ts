/**
 * An owner killed between its append and its outbox (issue 21): the commits are in
 * EVENTS, their goal states and statuses were never published. The crash is made
 * exactly there — the group is decided and appended by the same command handler a
 * controller uses, and nothing else is done — then a controller takes the VPC: it
 * must publish what the log says is unpublished, every host must converge, and a
 * second takeover must not publish any goal state twice in effect (msgId dedup).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jetstream } from '@nats-io/jetstream';
import {
  createCommandHandler,
  createJetStreamEventLog,
  createJetStreamIntentSource,
  putHosts,
} from '../../infra/index.js';
import { bucketOf, streams, subjects, type Status } from '../../shared/index.js';
import { vpc } from '../../actors/index.js';
import { startFleet } from '../../services/nca/fleet.js';
import { diverging, foldEventLog } from '../../services/nca/oracle.js';
import {
  eventually,
  fleet,
  isolatedNats,
  readCommits,
  readStream,
  startTestController,
  testLog,
  unique,
} from '../support/index.js';

const HOSTS = fleet(2, 3, 'rep');
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const test = suite('an owner killed between append and outbox');

test('the next owner publishes what the log holds unpublished; hosts converge; nothing twice', async () => {
  const server = await isolatedNats();
  let agents: Awaited<ReturnType<typeof startFleet>> | undefined;
  let controller: Awaited<ReturnType<typeof startTestController>> | undefined;
  try {
    await putHosts(server.nc, HOSTS);
    const vpcId = unique('rep');
    const intents = [
      { id: `${vpcId}-v`, kind: 'vpc.create', vpcId, spec: { cidr: '10.0.0.0/16' } },
      {
        id: `${vpcId}-s`,
        kind: 'subnet.create',
        vpcId,
        spec: { subnetId: 's1', cidr: '10.0.1.0/24', gatewayIp: '10.0.1.1' },
      },
      ...HOSTS.map((h, i) => ({
        id: `${vpcId}-p${i}`,
        kind: 'port.create',
        vpcId,
        spec: { portId: `p${i}`, subnetId: 's1', hostId: h.hostId },
      })),
    ];
    const js = jetstream(server.nc);
    for (const intent of intents)
      await js.publish(subjects.intent(vpcId), encoder.encode(JSON.stringify(intent)));

    // The crashed owner: decided and appended as one group, then gone.
    const log = await createJetStreamEventLog(server.nc);
    const stored = await (
      await createJetStreamIntentSource(server.nc)
    ).read(bucketOf(vpcId), vpcId, 0, 100);
    assert.is(stored.length, intents.length);
    const lookupHost = (id: string) => {
      const h = HOSTS.find((x) => x.hostId === id);
      return h && { region: h.region, az: h.az, dc: h.dc, cluster: h.cluster };
    };
    const handler = createCommandHandler({ log, decider: vpc.vpcDecider });
    const appended = await handler.handleGroup(
      vpcId,
      stored.map((s) => vpc.commandFor(s, lookupHost).command),
      vpc.initialState(vpcId),
    );
    assert.is(appended.commits.length, intents.length, 'the whole group appended');
    const revision = appended.revision!;
    const goalStatesOf = async () =>
      (await readStream(server.nc, streams.goalStates)).filter((m) =>
        m.msgId?.startsWith(`${vpcId}:`),
      );
    assert.is((await goalStatesOf()).length, 0, 'no goal state was published (the crash)');
    assert.is((await readStream(server.nc, streams.status, subjects.status(vpcId))).length, 0);

    // The next owner, and the hosts' agents.
    controller = await startTestController(server.url);
    agents = await startFleet({
      natsUrl: server.url,
      kafka: {},
      hosts: HOSTS,
      logger: testLog,
      fleetId: 'rep',
    });
    await eventually(
      async () => {
        const statuses = (await readStream(server.nc, streams.status, subjects.status(vpcId))).map(
          (m) => JSON.parse(decoder.decode(m.data)) as Status,
        );
        const programmed = new Set(
          statuses.filter((s) => s.outcome === 'programmed').map((s) => s.intentId),
        );
        return intents.slice(2).every((i) => programmed.has(i.id)) ? statuses : undefined;
      },
      { timeoutMs: 30_000, what: 'every port intent programmed by the next owner' },
    );
    const first = await goalStatesOf();
    assert.ok(first.length >= HOSTS.length, `${first.length} goal states published`);
    const states = await foldEventLog(server.nc, { vpcIds: [vpcId] });
    assert.equal(
      diverging(
        states,
        [...agents.hosts.values()].map((h) => h.model),
      ),
      [],
      'every host holds what EVENTS says',
    );
    const commits = (await readCommits(server.nc)).filter((c) => c.commit.vpcId === vpcId);
    assert.is(commits.length, intents.length, 'nothing decided again');

    // Another takeover, woken by a new intent: the crashed group is sent again (its
    // watermark says unpublished) and the stream takes none of it twice.
    await controller.stop();
    controller = await startTestController(server.url);
    const route = {
      id: `${vpcId}-r`,
      kind: 'route.set',
      vpcId,
      spec: { destination: '0.0.0.0/0', nextHop: '10.0.1.9' },
    };
    await js.publish(subjects.intent(vpcId), encoder.encode(JSON.stringify(route)));
    await eventually(
      async () =>
        (await readStream(server.nc, streams.status, subjects.status(vpcId))).some(
          (m) => (JSON.parse(decoder.decode(m.data)) as Status).intentId === route.id,
        )
          ? true
          : undefined,
      { timeoutMs: 30_000, what: 'the route decided' },
    );
    const again = await goalStatesOf();
    const ofCrashed = (list: typeof again) =>
      list.filter((m) => !m.msgId!.includes(':resync:') && m.msgId!.includes(`:${revision}:`));
    assert.is(ofCrashed(again).length, ofCrashed(first).length, 'no goal state stored twice');
    assert.is(
      new Set(ofCrashed(again).map((m) => m.msgId)).size,
      ofCrashed(again).length,
      'one per target',
    );
  } finally {
    await controller?.stop();
    await agents?.stop();
    await server.stop();
  }
});

test.run();
