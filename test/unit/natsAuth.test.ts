import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  hostPermissions,
  hostSubjects,
  hostsImports,
  renderUsers,
  rolePermissions,
} from '../../infra/index.js';
import { subjects } from '../../shared/index.js';
import { nkeyAuthenticator, nkeys } from '@nats-io/transport-node';
import { nkeySeedAuthenticator } from '../../infra/index.js';

const place = { region: 'r1', az: 'az1', dc: 'dc1', cluster: 'c7' };
const Perms = suite('NATS accounts, permissions and limits per role (DESIGN §9)');

Perms('a client may publish only the unmapped intent and the sync API', () => {
  const p = rolePermissions('client')!;
  assert.equal(
    p.publish.allow.sort(),
    [subjects.applyIntents, subjects.intentMappingSource].sort(),
  );
  assert.not.ok(p.publish.allow.some((s) => s.startsWith('evt') || s === subjects.intentsAll));
  assert.equal(p.subscribe!.allow.sort(), ['_INBOX.>', subjects.statusAll].sort());
});

Perms('only controllers write events, goal states and status; nobody deletes history', () => {
  assert.is(rolePermissions('service'), undefined);
  const controller = rolePermissions('controller')!;
  const southbound = rolePermissions('southbound')!;
  for (const s of [subjects.eventsAll, 'gs.>', 'gsm.>', subjects.statusAll])
    assert.ok(controller.publish.allow.includes(s), s);
  for (const s of southbound.publish.allow) {
    assert.not.ok(/^(intent|evt|gs|gsm|status|gsack)\./.test(s), s);
  }
  for (const p of [controller, southbound]) {
    assert.ok(p.publish.deny!.includes('$JS.API.STREAM.DELETE.*'));
    assert.ok(p.publish.deny!.includes('$JS.API.STREAM.PURGE.*'));
    assert.ok(p.publish.deny!.includes('$JS.API.STREAM.MSG.DELETE.*'));
  }
  // Its relay receipts (stream RELAYS) are the southbound's alone.
  assert.ok(southbound.publish.allow.includes(subjects.relayReceiptsAll));
  assert.not.ok(controller.publish.allow.includes(subjects.relayReceiptsAll));
  // The Kafka partition table and the southbound table are the southbound's to write.
  assert.ok(controller.publish.deny!.includes('$KV.placement.kafka.>'));
  assert.ok(southbound.publish.allow.includes('$KV.placement.kafka.>'));
  assert.not.ok(southbound.publish.allow.includes('$KV.hosts.>'));
});

Perms('an NCA host imports only its own unicast, its cluster, its acks, resync and records', () => {
  const host = { ...place, hostId: 'h9' };
  assert.equal(hostSubjects(host), {
    streams: ['gs.r1.az1.dc1.c7.h9', 'gsm.r1.az1.dc1.c7.*'],
    services: [
      'gsack.*.*.h9',
      'alcor.resync.h9',
      '$JS.API.DIRECT.GET.GOALSTATES.gsm.r1.az1.dc1.c7.*',
      '$JS.API.DIRECT.GET.KV_hosts.$KV.hosts.h9',
    ],
  });
  // A Kafka-bound host also reads its topic's partition table (one key).
  assert.equal(
    hostSubjects({ ...host, kafkaCluster: 'a' }).services.at(-1),
    '$JS.API.DIRECT.GET.KV_placement.$KV.placement.kafka.a.alcor.gs.r1.az1.dc1.c7',
  );
  const p = hostPermissions(host);
  assert.equal(p.subscribe!.allow, [
    'gs.r1.az1.dc1.c7.h9',
    'gsm.r1.az1.dc1.c7.*',
    '_INBOX.h9.>',
    'alcor.nca.state.h9',
  ]);
  assert.equal(p.publish.allow, hostSubjects(host).services);
  assert.equal(p.responses, { max: 1, expires: '15m' });
});

Perms('a host id that would widen a subject is refused', () => {
  assert.throws(() => hostPermissions({ ...place, hostId: 'h9.>' }), /hostId/);
  assert.throws(() => hostPermissions({ ...place, hostId: '*' }), /hostId/);
  assert.throws(() => hostPermissions({ ...place, cluster: 'c.>', hostId: 'h9' }), /cluster/);
});

Perms("HOSTS imports every host's subjects; each host's user is allowed only its own", () => {
  const imports = hostsImports();
  const host = { ...place, hostId: 'h9', kafkaCluster: 'a' };
  const own = hostSubjects(host);
  // Every subject a host may use matches one of the account's imports.
  const matches = (pattern: string, subject: string): boolean => {
    const p = pattern.split('.');
    const t = subject.split('.');
    for (let i = 0; i < p.length; i++) {
      if (p[i] === '>') return t.length > i;
      if (p[i] !== '*' && p[i] !== t[i]) return false;
    }
    return p.length === t.length;
  };
  for (const s of own.streams)
    assert.ok(
      imports.streams.some((i) => matches(i, s)),
      s,
    );
  for (const s of own.services)
    assert.ok(
      imports.services.some(
        (i) => matches(i.subject, s) || matches(i.subject, s.replaceAll('*', 'x')),
      ),
      s,
    );
  assert.equal(hostPermissions(host).publish.allow, own.services);
});

Perms('users render with their keys and permissions, the service user without', () => {
  const text = renderUsers([
    { name: 'service', nkey: 'USERVICE' },
    { name: 'client', nkey: 'UCLIENT', permissions: rolePermissions('client')! },
  ]).join('\n');
  assert.match(text, '{ nkey: USERVICE }');
  assert.match(
    text,
    '{ nkey: UCLIENT, permissions: { publish: { allow: ["intent.*", "alcor.intents.apply"] }, subscribe: { allow: ["_INBOX.>", "status.>"] } } }',
  );
});

Perms('the nkey authenticator signs as nats.js does, with node:crypto', () => {
  for (let i = 0; i < 5; i++) {
    const seed = nkeys.createUser().getSeed();
    const nonce = `nonce-${i}-${Math.random().toString(36)}`;
    const ours = nkeySeedAuthenticator(seed)(nonce);
    const theirs = nkeyAuthenticator(seed)(nonce);
    assert.equal(ours, theirs, 'the same public key and signature bytes');
    // A check that can fail: another nonce, another signature.
    assert.not.equal(nkeySeedAuthenticator(seed)(`${nonce}x`), theirs);
  }
  const noNonce = nkeySeedAuthenticator(nkeys.createUser().getSeed())(undefined) as { sig: string };
  assert.is(noNonce.sig, '', 'no nonce: no signature');
  assert.throws(() => nkeySeedAuthenticator(new TextEncoder().encode('SUNOTASEED')));
});

Perms.run();
