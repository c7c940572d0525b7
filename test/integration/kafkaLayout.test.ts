/**
 * The Kafka binding's layout at scale (issue 27): hosts of a group share the
 * partitions of their group's topic, `hostsPerPartition` to a partition, each
 * taking the records keyed by its id. On a Kafka broker of this test's own, a
 * southbound module assigns 2 groups of 10 hosts 4 to a partition: each topic has
 * 3 partitions (Kafka's metadata says so), every intent is programmed, every host
 * holds exactly what EVENTS says and took exactly the records keyed for it, and
 * the records of its neighbours on the partition are counted, not applied. The
 * grouping is the first writer's: a module set otherwise keeps it, and a topic it
 * assigns first gets its own (the positive control: one host per partition).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createKafkaClient, createPartitionAssignments, putHosts } from '../../infra/index.js';
import { ConfigError, hostPartition, kafkaTopics } from '../../shared/index.js';
import { startFleet } from '../../services/nca/fleet.js';
import { diverging, foldEventLog } from '../../services/nca/oracle.js';
import type { ApplyReplyItem } from '../../services/controller/index.js';
import { southboundConfigFromEnv } from '../../services/southbound/index.js';
import { applyProgrammed, testLog } from '../support/controller.js';
import { eventually } from '../support/eventually.js';
import { startKafkaStack } from '../support/kafkaStack.js';
import { fleet as makeHosts, vpcWithPorts } from '../support/workload.js';

const test = suite('the Kafka binding: hosts sharing a partition');

test('4 hosts to a partition: 3 partitions per 10-host topic, every intent programmed, each host takes only its own records', async () => {
  const stack = await startKafkaStack('layout', { kafkaHostsPerPartition: 4 });
  const { server, hosts, brokers, agents } = stack;
  const admin = createKafkaClient('layout', stack.kafka.brokers, {
    clientId: 'layout-test',
    logger: testLog,
  }).kafka.admin();
  try {
    // A VPC with a port on every host, then each host's port moved to the next
    // host of its group: unicasts and multicasts to every host.
    const ids = hosts.map((h) => h.hostId);
    const made = await applyProgrammed<ApplyReplyItem[]>(server.nc, vpcWithPorts('lay', ids));
    const moves = hosts.map((h, i) => ({
      id: `lay-move-${i}`,
      kind: 'port.update',
      vpcId: 'lay',
      spec: { portId: `p${i}`, hostId: ids[(i + 1) % ids.length] },
    }));
    const moved = await applyProgrammed<ApplyReplyItem[]>(server.nc, moves);
    for (const r of [...made, ...moved])
      assert.is(r.outcome === 'accepted' && r.programmed?.outcome, 'programmed', JSON.stringify(r));

    await admin.connect();
    const topics = [...new Set(hosts.map((h) => kafkaTopics.cluster(h)))];
    const meta = await admin.fetchTopicMetadata({ topics });
    assert.equal(
      meta.topics.map((t) => t.partitions.length),
      [3, 3],
      '10 hosts, 4 to a partition',
    );
    assert.equal(
      diverging(
        await foldEventLog(server.nc),
        [...agents.hosts.values()].map((h) => h.model),
      ),
      [],
      'every host holds exactly what EVENTS says',
    );
    let neighbours = 0;
    for (const host of agents.hosts.values()) {
      assert.is(host.stats.misrouted, 0, `${host.record.hostId}: nothing misrouted`);
      assert.is(host.stats.invalid, 0, `${host.record.hostId}: nothing refused`);
      assert.is(
        host.stats.delivered,
        host.stats.needed,
        `${host.record.hostId}: delivered = needed`,
      );
      neighbours += host.stats.neighbours;
    }
    // Every partition holds 2–4 hosts that all got records: each saw the others'.
    assert.ok(
      neighbours > hosts.length,
      `records of neighbours fetched and skipped: ${neighbours}`,
    );

    // The grouping is the first writer's: a module set to 1 keeps the topic's 4, and
    // assigns its own 1 to a topic it is first to write.
    const other = await createPartitionAssignments(
      server.nc,
      { layout: admin },
      { hostsPerPartition: 1 },
    );
    const kept = await other.ensure('layout', hosts[0]!, [hosts[0]!.hostId]);
    assert.is(kept.hostsPerPartition, 4);
    assert.is(await other.partitionOf('layout', hosts[9]!, hosts[9]!.hostId), 2);
    const fresh = makeHosts(1, 3, 'klay-new', { regionPrefix: 'klay-new-r' });
    const own = await other.ensure(
      'layout',
      fresh[0]!,
      fresh.map((h) => h.hostId),
    );
    assert.is(own.hostsPerPartition, 1);
    assert.equal(
      fresh.map((h) => hostPartition(own, h.hostId)),
      [0, 1, 2],
      'one host per partition',
    );
    const [freshTopic] = (
      await admin.fetchTopicMetadata({ topics: [kafkaTopics.cluster(fresh[0]!)] })
    ).topics;
    assert.is(freshTopic?.partitions.length, 3);

    // A host assigned after the fleet started lands on a partition it reads (the
    // 11th of 10, on partition 2 with two others): its records are counted as a
    // neighbour's there, not as misrouted (the fleet reads the assignment again).
    const [late] = makeHosts(1, 11, 'layout', {
      binding: () => ({ type: 'kafka', cluster: 'layout' }),
    }).slice(10);
    await putHosts(server.nc, [late!]);
    const lateFleet = await startFleet({
      natsUrl: server.url,
      kafka: brokers,
      hosts: [late!],
      logger: testLog,
      fleetId: 'layout-late',
    });
    try {
      const layout = await other.read('layout', kafkaTopics.cluster(late!));
      const partition = hostPartition(layout, late!.hostId);
      assert.is(partition, 2);
      const sharing = layout.hosts
        .filter((h) => h !== late!.hostId && hostPartition(layout, h) === partition)
        .map((h) => agents.hosts.get(h)!.stats);
      assert.is(sharing.length, 2);
      const before = sharing.map((st) => st.neighbours);
      const [joined] = await applyProgrammed<ApplyReplyItem[]>(server.nc, [
        {
          id: 'lay-late',
          kind: 'port.create',
          vpcId: 'lay',
          spec: { portId: 'plate', subnetId: 's1', hostId: late!.hostId },
        },
      ]);
      assert.is(joined?.outcome === 'accepted' && joined.programmed?.outcome, 'programmed');
      await eventually(
        () => (sharing.every((st, i) => st.neighbours > before[i]!) ? true : undefined),
        {
          timeoutMs: 10_000,
          what: 'the late host counted as a neighbour',
        },
      );
      for (const host of agents.hosts.values())
        assert.is(host.stats.misrouted, 0, `${host.record.hostId}: nothing misrouted`);
      assert.is(lateFleet.hosts.get(late!.hostId)!.stats.misrouted, 0);
    } finally {
      await lateFleet.stop();
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
    await stack.stop();
  }
});

test('a bad ALCOR_KAFKA_HOSTS_PER_PARTITION is refused by name; a good one is taken', () => {
  const env = { KAFKA_CLUSTERS: 'a', KAFKA_A_BROKERS: '127.0.0.1:9092' };
  for (const bad of ['0', '-2', '2.5', 'many', '1001'])
    assert.throws(
      () => southboundConfigFromEnv({ ...env, ALCOR_KAFKA_HOSTS_PER_PARTITION: bad }),
      (err: unknown) =>
        err instanceof ConfigError && /ALCOR_KAFKA_HOSTS_PER_PARTITION/.test(String(err.message)),
      bad,
    );
  assert.is(
    southboundConfigFromEnv({ ...env, ALCOR_KAFKA_HOSTS_PER_PARTITION: '8' })
      .kafkaHostsPerPartition,
    8,
  );
});

test.run();
