import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { hostPermissions, renderUsers, rolePermissions } from '../../infra/index.js';
import { subjects } from '../../shared/index.js';

const place = { region: 'r1', az: 'az1', dc: 'dc1', cluster: 'c7' };
const Perms = suite('NATS permissions per role (DESIGN §9)');

Perms('a client may publish only the unmapped intent and the sync API', () => {
  const p = rolePermissions('client')!;
  assert.equal(
    p.publish.allow.sort(),
    [subjects.applyIntents, subjects.intentMappingSource].sort(),
  );
  assert.not.ok(p.publish.allow.some((s) => s.startsWith('evt') || s === subjects.intentsAll));
  assert.equal(p.subscribe.allow.sort(), ['_INBOX.>', subjects.statusAll].sort());
});

Perms('services are unrestricted; the fleet harness may not touch intents or events', () => {
  assert.is(rolePermissions('service'), undefined);
  const fleet = rolePermissions('fleet')!;
  for (const s of fleet.publish.allow) {
    assert.not.ok(/^(intent|evt|gs|gsm|status)\./.test(s), s);
    assert.not.ok(/STREAM\.(DELETE|PURGE|UPDATE|CREATE)/.test(s), s);
  }
});

Perms('an NCA host names only its own unicast, its cluster, its inbox and its acks', () => {
  const p = hostPermissions({ ...place, hostId: 'h9' });
  assert.equal(p.subscribe.allow, [
    'gs.r1.az1.dc1.c7.h9',
    'gsm.r1.az1.dc1.c7.*',
    '_INBOX.h9.>',
    'alcor.nca.state.h9',
  ]);
  assert.equal(p.publish.allow, [
    'gsack.*.*.h9',
    'alcor.resync.h9',
    '$JS.API.DIRECT.GET.GOALSTATES.gsm.r1.az1.dc1.c7.*',
  ]);
  assert.ok(p.allowResponses);
});

Perms('a host id that would widen a subject is refused', () => {
  assert.throws(() => hostPermissions({ ...place, hostId: 'h9.>' }), /hostId/);
  assert.throws(() => hostPermissions({ ...place, hostId: '*' }), /hostId/);
  assert.throws(() => hostPermissions({ ...place, cluster: 'c.>', hostId: 'h9' }), /cluster/);
});

Perms('users render with their keys and permissions, services without limits', () => {
  const text = renderUsers([
    { name: 'service', nkey: 'USERVICE' },
    { name: 'nca h9', nkey: 'UHOST', permissions: hostPermissions({ ...place, hostId: 'h9' }) },
  ]);
  assert.match(text, '{ nkey: USERVICE }');
  assert.match(
    text,
    '{ nkey: UHOST, permissions: { publish: { allow: ["gsack.*.*.h9", "alcor.resync.h9", "$JS.API.DIRECT.GET.GOALSTATES.gsm.r1.az1.dc1.c7.*"] }, subscribe: { allow: ["gs.r1.az1.dc1.c7.h9", "gsm.r1.az1.dc1.c7.*", "_INBOX.h9.>", "alcor.nca.state.h9"] }, allow_responses: true } }',
  );
});

Perms.run();
