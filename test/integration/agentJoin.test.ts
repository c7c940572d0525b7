/**
 * A JetStream-bound agent that joins a VPC subscribes to the VPC's multicast only
 * once its first full state is in, so a multicast published just before passes it
 * by. The agent then looks at the subject's last stored multicast (at once and
 * again a second later: a replica behind the leader may answer the first look)
 * and, if it is newer than its full state, asks the owner for the VPC. Here the
 * test is the owner: it publishes a multicast the agent cannot have, then the
 * join's full state — and the agent must end with what the multicast said.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jetstream } from '@nats-io/jetstream';
import { putHosts } from '../../infra/index.js';
import {
  bucketOf,
  clusterKey,
  DEFAULT_BUCKET_COUNT,
  subjects,
  type GoalStateMessage,
} from '../../shared/index.js';
import { startFleet, type Fleet } from '../../services/nca/fleet.js';
import { eventually, isolatedNats, testLog, type IsolatedNats } from '../support/index.js';
import { unique } from '../support/names.js';
import { fleet as makeHosts } from '../support/workload.js';

const Join = suite('an agent joining a VPC');
const encoder = new TextEncoder();

Join(
  'asks for the full state once subscribed: a multicast that passed it by is not lost',
  async () => {
    let nats: IsolatedNats | undefined;
    let nca: Fleet | undefined;
    try {
      nats = await isolatedNats();
      const { nc } = nats;
      const [host] = makeHosts(1, 1, unique('join'));
      await putHosts(nc, [host!]);
      const vpcId = unique('vjoin');
      const bucket = bucketOf(vpcId, DEFAULT_BUCKET_COUNT);
      const port = (id: string, ip: string, rev: number) => ({
        op: 'upsert' as const,
        kind: 'port' as const,
        key: `port:${id}`,
        rev,
        value: { portId: id, subnetId: 's1', ip, mac: 'fa:16:3e:00:00:01', securityGroupIds: [] },
      });
      const message = (
        revision: number,
        mode: 'full' | 'delta',
        target: string,
        ops: GoalStateMessage['ops'],
      ): GoalStateMessage => ({ vpcId, bucket, revision, mode, target, ops });
      const mine = port('pA', '10.0.1.5', 10);
      const neighbor = port('pB', '10.0.1.6', 11);
      // The owner, played by the test: full states as of revision 11 (both ports).
      const asked: unknown[] = [];
      const resync = nc.subscribe(subjects.resync(host!.hostId), {
        callback: (_err, msg) => {
          const body = msg.data.length > 0 ? (msg.json<{ vpcIds?: string[] }>() ?? {}) : {};
          asked.push(body);
          const named = body.vpcIds?.includes(vpcId) ?? false;
          if (named)
            nc.publish(
              subjects.goalStateHost(host!, host!.hostId),
              encoder.encode(JSON.stringify(message(11, 'full', host!.hostId, [mine, neighbor]))),
            );
          msg.respond(
            encoder.encode(
              JSON.stringify({
                hostId: host!.hostId,
                owner: 'test',
                vpcs: named ? [{ vpcId, revision: 11 }] : [],
                buckets: `0-${DEFAULT_BUCKET_COUNT - 1}`,
                bucketCount: DEFAULT_BUCKET_COUNT,
              }),
            ),
          );
        },
      });
      nca = await startFleet({
        natsUrl: nats.url,
        kafka: {},
        hosts: [host!],
        logger: testLog,
        fleetId: unique('joinf'),
      });
      const agent = [...nca.hosts.values()][0]!;
      await eventually(() => (asked.length > 0 ? true : undefined), { what: 'the start resync' });

      // Revision 11's multicast, before the host is subscribed: it passes it by.
      await jetstream(nc).publish(
        subjects.goalStateMulticast(host!, vpcId),
        encoder.encode(JSON.stringify(message(11, 'delta', clusterKey(host!), [neighbor]))),
      );
      // The join: revision 10's full state (its own port).
      nc.publish(
        subjects.goalStateHost(host!, host!.hostId),
        encoder.encode(JSON.stringify(message(10, 'full', host!.hostId, [mine]))),
      );
      await eventually(() => (agent.model.vpcs.get(vpcId)?.revision === 11 ? true : undefined), {
        timeoutMs: 10_000,
        what: 'the agent at revision 11',
      });
      assert.equal(
        [...(agent.model.vpcs.get(vpcId)?.resources.keys() ?? [])].sort(),
        ['port:pA', 'port:pB'],
        'the neighbor the passed-by multicast carried is there',
      );
      assert.ok(
        asked.some((b) => (b as { vpcIds?: string[] }).vpcIds?.includes(vpcId)),
        'the VPC was asked for by name',
      );
      assert.is(agent.stats.resyncsOnJoin, 1, 'counted as a join that asked again');
      resync.unsubscribe();
    } finally {
      await nca?.stop();
      await nats?.stop();
    }
  },
);

Join.run();
