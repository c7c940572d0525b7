/**
 * The pure parts of the southbound (issue 6): who a commit concerns, what an agent
 * acks, the binding's lifecycle, and the contracts' checks on bad input.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor, fromPromise, waitFor } from 'xstate';
import {
  decodeSouthboundTable,
  parseAck,
  parseResyncRequest,
  parseTopologyFile,
} from '../../shared/index.js';
import { nca, southbound, vpc as vpcActor } from '../../actors/index.js';
import { hostIdAt, makeTopology, vpcWithSubnet } from '../support/domain.js';

const hosts = makeTopology({ regions: 2, clustersPerRegion: 2, hostsPerCluster: 3 });
const H = hostIdAt;
const given = () => vpcWithSubnet(hosts, { bucket: 42 });

// ── who a commit concerns ────────────────────────────────────────────────────

const W = suite('hosts a commit concerns');

W('a first port: the host joins the mapping and is the only one to ack', () => {
  const v = given();
  const step = v.do('port.create', { portId: 'p1', subnetId: 's1', hostId: H(0, 0, 0) });
  assert.equal(vpcActor.hostChanges(v.state, step.recorded!), {
    present: [H(0, 0, 0)],
    absent: [],
  });
  assert.equal(vpcActor.affectedHosts(v.state, step.messages), [H(0, 0, 0)]);
});

W(
  'a migration: the old host leaves, the new joins; every VPC host of a touched cluster acks',
  () => {
    const v = given();
    v.do('port.create', { portId: 'p1', subnetId: 's1', hostId: H(0, 0, 0) });
    v.do('port.create', { portId: 'p2', subnetId: 's1', hostId: H(0, 0, 1) });
    v.do('port.create', { portId: 'p3', subnetId: 's1', hostId: H(1, 1, 2) });
    const step = v.do('port.update', { portId: 'p1', hostId: H(1, 1, 0) });
    assert.equal(vpcActor.hostChanges(v.state, step.recorded!), {
      present: [H(1, 1, 0)],
      absent: [H(0, 0, 0)],
    });
    // The leaver gets its empty full, the joiner its full, and the clusters of both
    // places hear of the move: their VPC hosts ack too.
    assert.equal(
      [...vpcActor.affectedHosts(v.state, step.messages)].sort(),
      [H(0, 0, 0), H(0, 0, 1), H(1, 1, 0), H(1, 1, 2)].sort(),
    );
  },
);

W('a second port on a host that holds the VPC changes no membership', () => {
  const v = given();
  v.do('port.create', { portId: 'p1', subnetId: 's1', hostId: H(0, 0, 0) });
  const step = v.do('port.create', { portId: 'p2', subnetId: 's1', hostId: H(0, 0, 0) });
  assert.equal(vpcActor.hostChanges(v.state, step.recorded!), {
    present: [H(0, 0, 0)],
    absent: [],
  });
});

// ── what an agent acks ───────────────────────────────────────────────────────

const A = suite('agent: apply and ack');

function firstFull() {
  const v = given();
  const step = v.do('port.create', { portId: 'p1', subnetId: 's1', hostId: H(0, 0, 0) });
  return step.messages[0]!.message;
}

A('an applied message acks applied with its revision and mode, and joins the VPC', () => {
  const message = firstFull();
  const model = nca.emptyHostModel(H(0, 0, 0));
  const handled = nca.handleGoalState(model, message, { now: () => 0 });
  assert.equal(handled.ack, {
    hostId: H(0, 0, 0),
    vpcId: 'vpc-1',
    revision: message.revision,
    mode: 'full',
    status: 'applied',
    timings: { apply: 0 },
  });
  assert.ok(handled.needed);
  assert.ok(handled.joined);
  assert.ok(parseAck(handled.ack).ok, 'the ack meets its own contract');
});

A('an op the dataplane refuses: nothing applied, the ack names the op', () => {
  const message = firstFull();
  const model = nca.emptyHostModel(H(0, 0, 0));
  const index = message.ops.findIndex((op) => op.key === 'port:p1');
  const handled = nca.handleGoalState(model, message, {
    failOp: (op) => op.key === 'port:p1',
  });
  assert.is(handled.ack.status, 'failed');
  assert.equal(handled.ack.error, {
    code: 'apply_failed',
    message: 'the dataplane refused upsert port:p1',
    path: `ops.${index}`,
  });
  assert.is(model.vpcs.size, 0, 'no op of the message applied');
  assert.not.ok(handled.joined);
});

// ── the binding's lifecycle ──────────────────────────────────────────────────

const B = suite('Kafka binding machine');

function binding(connects: Array<'ok' | 'fail'>) {
  let calls = 0;
  const disconnects: string[] = [];
  const machine = southbound.kafkaBindingMachine.provide({
    actors: {
      connect: fromPromise(() => {
        const outcome = connects[Math.min(calls, connects.length - 1)];
        calls += 1;
        return outcome === 'ok' ? Promise.resolve() : Promise.reject(new Error('broker down'));
      }),
      disconnect: fromPromise(({ input }: { input: { clusterId: string } }) => {
        disconnects.push(input.clusterId);
        return Promise.resolve();
      }),
    },
    delays: { retry: 5 },
  });
  const actor = createActor(machine, { input: { clusterId: 'a' } });
  actor.start();
  return { actor, disconnects, calls: () => calls };
}

B('connects, degrades on a failed produce, reconnects, drains to stopped', async () => {
  const { actor, disconnects } = binding(['ok']);
  await waitFor(actor, (s) => s.matches('ready'));
  actor.send({ type: 'FAILED', error: 'NOT_ENOUGH_REPLICAS' });
  assert.ok(actor.getSnapshot().matches('degraded'));
  assert.is(actor.getSnapshot().context.lastError, 'NOT_ENOUGH_REPLICAS');
  await waitFor(actor, (s) => s.matches('ready'));
  assert.is(actor.getSnapshot().context.failures, 0, 'a connect resets the failures');
  actor.send({ type: 'DRAIN' });
  await waitFor(actor, (s) => s.status === 'done');
  assert.ok(actor.getSnapshot().matches('stopped'));
  assert.equal(disconnects, ['a', 'a'], 'the failed producer and the last one are closed');
});

B('a cluster that refuses connections keeps it degraded, counting failures', async () => {
  const { actor, calls } = binding(['fail', 'fail', 'fail', 'ok']);
  await waitFor(actor, (s) => s.matches('ready'), { timeout: 2000 });
  assert.is(calls(), 4);
  actor.send({ type: 'DRAIN' });
  await waitFor(actor, (s) => s.status === 'done');
});

B('the pause between attempts grows and is capped at 5 s', () => {
  const retry = southbound.kafkaBindingMachine.implementations.delays.retry as (a: {
    context: { failures: number };
  }) => number;
  assert.equal(
    [1, 2, 3, 4, 5, 10, 50].map((failures) => retry({ context: { failures } })),
    [250, 500, 1000, 2000, 4000, 5000, 5000],
  );
});

// ── bad input on the southbound contracts ────────────────────────────────────

const C = suite('southbound contracts: bad input');

const host = (i: number, extra: Record<string, unknown> = {}) => ({
  hostId: `h${i}`,
  region: 'r1',
  az: 'az1',
  dc: 'dc1',
  cluster: 'c1',
  underlayIp: `10.1.0.${i}`,
  binding: { type: 'kafka', cluster: 'a' },
  ...extra,
});

C('a topology file: {hosts: […]} or a bare list', () => {
  const wrapped = parseTopologyFile({ hosts: [host(1), host(2)] });
  assert.ok(wrapped.ok);
  assert.is(wrapped.ok && wrapped.value.length, 2);
  const bare = parseTopologyFile([host(1), { ...host(2), binding: { type: 'jetstream' } }]);
  assert.ok(bare.ok);
  assert.equal(bare.ok && bare.value[1]!.binding, { type: 'jetstream' });
});

C('a topology file: each fault named by code and path', () => {
  const cases: Array<[unknown, string, string | undefined]> = [
    [{}, 'missing_field', 'hosts'],
    ['hosts', 'missing_field', 'hosts'],
    [{ hosts: [] }, 'too_few', 'hosts'],
    [{ hosts: [host(1)], extra: 1 }, 'unknown_field', 'extra'],
    [
      { hosts: [host(1), host(1, { underlayIp: '10.9.9.9' })] },
      'duplicate_value',
      'hosts.1.hostId',
    ],
    [
      { hosts: [host(1), host(2, { underlayIp: '10.1.0.1' })] },
      'duplicate_value',
      'hosts.1.underlayIp',
    ],
    [[host(1), host(2, { binding: { type: 'mqtt' } })], 'invalid_value', '1.binding.type'],
    [[host(1, { hostId: 'has space' })], 'id_format', '0.hostId'],
    [[host(1, { underlayIp: '10.1.0.300' })], 'invalid_ip', '0.underlayIp'],
  ];
  for (const [input, code, path] of cases) {
    const r = parseTopologyFile(input);
    assert.not.ok(r.ok, JSON.stringify(input));
    if (!r.ok) {
      assert.is(`${r.error.code}@${r.error.path}`, `${code}@${path}`, JSON.stringify(input));
      assert.ok(r.error.message.length > 0);
    }
  }
});

C('acks, resync requests and the southbound table refuse what is not theirs', () => {
  const ack = { hostId: 'h1', vpcId: 'v1', revision: 3, status: 'applied' };
  assert.ok(parseAck(ack).ok);
  assert.ok(parseAck({ ...ack, mode: 'full' }).ok);
  const badMode = parseAck({ ...ack, mode: 'partial' });
  assert.is(!badMode.ok && badMode.error.path, 'mode');
  const badStatus = parseAck({ ...ack, status: 'done' });
  assert.is(!badStatus.ok && badStatus.error.path, 'status');
  assert.ok(parseResyncRequest({ hostId: 'h1' }).ok);
  const noHost = parseResyncRequest({ vpcIds: ['v1'] });
  assert.is(!noHost.ok && noHost.error.path, 'hostId');
  const badVpc = parseResyncRequest({ hostId: 'h1', vpcIds: ['v 1'] });
  assert.is(!badVpc.ok && badVpc.error.path, 'vpcIds.0');
  const table = decodeSouthboundTable(new TextEncoder().encode('{"epoch":"one"}'));
  assert.not.ok(table.ok);
});

// ── which hosts a goal state becomes records for, on one relay ──────────────

const F = suite('relay fanout: the hosts a goal state is recorded for');

const fanHosts = makeTopology({ regions: 1, clustersPerRegion: 2, hostsPerCluster: 3 }).map(
  (h, i) => ({
    ...h,
    binding:
      i % 3 === 2
        ? { type: 'jetstream' as const }
        : { type: 'kafka' as const, cluster: i % 3 === 0 ? 'a' : 'b' },
  }),
);
const byId = new Map(fanHosts.map((h) => [h.hostId, h]));
const scope = { place: fanHosts[0]!, kafkaCluster: 'a' };

F("only the partition's hosts bound to this Kafka cluster, in the order given", () => {
  const all = [...fanHosts].reverse().map((h) => h.hostId);
  const picked = southbound.recordHosts(all, scope, (id) => byId.get(id));
  assert.equal(
    picked.map((h) => h.hostId),
    [fanHosts[0]!.hostId],
    'cluster c0 has one host on Kafka a: h0 (h1 is on b, h2 on JetStream, c1 is another partition)',
  );
  // Positive control: on Kafka b, the other host of c0.
  const onB = southbound.recordHosts(all, { ...scope, kafkaCluster: 'b' }, (id) => byId.get(id));
  assert.equal(
    onB.map((h) => h.hostId),
    [fanHosts[1]!.hostId],
  );
});

F('a host the directory does not know gets no record', () => {
  assert.equal(
    southbound.recordHosts(['ghost', fanHosts[0]!.hostId], scope, (id) => byId.get(id)).length,
    1,
  );
  assert.equal(
    southbound.recordHosts(['ghost'], scope, (id) => byId.get(id)),
    [],
  );
});

F('headers name the VPC, the revision and the host (routing without decoding)', () => {
  const message = {
    vpcId: 'v1',
    bucket: 3,
    revision: 17,
    mode: 'delta' as const,
    target: 'x',
    ops: [],
  };
  assert.equal(southbound.recordHeaders(message, 'h9'), {
    vpcId: 'v1',
    revision: '17',
    hostId: 'h9',
  });
});

W.run();
A.run();
B.run();
C.run();
F.run();
