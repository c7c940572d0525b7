/**
 * The servers as a service finds them at start. A NATS server without the intent mapping (a stock `nats-server -js`): every
 * intent would match no stream and be refused while the services look healthy.
 * The controller checks the mapping at start and refuses, naming what to add.
 * Positive control: against the rendered configuration it starts and an intent
 * is stored and accepted. A NATS that is not up yet is waited for: the process
 * stays, /readyz says what it waits for, and it becomes ready once NATS is up.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  ManagedProcess,
  connectNats,
  freePort,
  repoRoot,
  runDir,
  startLocalNats,
} from '../../infra/index.js';
import { DEFAULT_BUCKET_COUNT, streams } from '../../shared/index.js';
import { ensureNatsServerBinary } from '../../infra/local/natsServer.js';
import { applyProgrammed, isolatedNats, startTestController } from '../support/controller.js';
import { fleet as makeHosts, streamCount } from '../support/workload.js';
import { runCli } from '../support/cli.js';
import { eventually } from '../support/eventually.js';
import type { ApplyReplyItem } from '../../services/controller/index.js';

const test = suite('the server layout is checked at start');

test('a controller against a NATS without the intent mapping refuses to start, naming the mapping', async () => {
  const dir = runDir('alcor-stock-nats-');
  mkdirSync(join(dir, 'js'), { recursive: true });
  const port = await freePort();
  const server = new ManagedProcess({
    name: 'stock-nats-server',
    command: (await ensureNatsServerBinary()).path,
    args: ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', join(dir, 'js')],
    logFile: join(dir, 'nats.log'),
  });
  const url = `nats://127.0.0.1:${port}`;
  try {
    await server.waitUntilReady(async () => {
      try {
        await (await connectNats(url, { name: 'probe', reconnect: false })).close();
        return true;
      } catch {
        return false;
      }
    }, 20_000);
    const refused = await startTestController(url).then(
      async (c) => {
        await c.stop();
        return undefined;
      },
      (err: unknown) => err as Error & { code?: string; field?: string },
    );
    assert.ok(refused, 'the controller did not start');
    assert.is(refused.code, 'invalid_config');
    assert.match(refused.message, /no subject mapping for intents/);
    assert.match(refused.message, /"intent\.\*": "intent\.\{\{partition\(/);
    // Nothing was stored by the check.
    const nc = await connectNats(url, { name: 'count', reconnect: false });
    const jsm = await jetstreamManager(nc);
    assert.is(await streamCount(jsm, streams.intents), 0);
    await nc.close();
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a controller started before its NATS waits, says so on /readyz, and is ready once NATS is up', async () => {
  const dir = runDir('alcor-late-nats-');
  const natsPort = await freePort();
  const opsPort = await freePort();
  const url = `nats://127.0.0.1:${natsPort}`;
  const controller = new ManagedProcess({
    name: 'controller',
    command: process.execPath,
    args: ['--import', 'tsx', join(repoRoot, 'services/controller/main.ts')],
    cwd: repoRoot,
    logFile: join(dir, 'controller.log'),
    env: {
      ...process.env,
      NATS_URL: url,
      ALCOR_INSTANCE_ID: 'late-nats',
      ALCOR_METRICS_PORT: String(opsPort),
      LOG_PRETTY: '0',
      LOG_LEVEL: 'info',
    },
  });
  const ops = `http://127.0.0.1:${opsPort}`;
  let server: Awaited<ReturnType<typeof startLocalNats>> | undefined;
  try {
    const waiting = await eventually(
      async () => {
        const res = await fetch(`${ops}/readyz`).catch(() => undefined);
        return res?.status === 503 ? await res.text() : undefined;
      },
      { timeoutMs: 30_000, what: 'the controller answering /readyz while NATS is down' },
    );
    assert.match(waiting, /waiting for nats/);
    assert.is((await fetch(`${ops}/healthz`)).status, 200, 'alive meanwhile');
    server = await startLocalNats({
      dir: join(dir, 'nats'),
      bucketCount: DEFAULT_BUCKET_COUNT,
      port: natsPort,
    });
    await eventually(
      async () => ((await fetch(`${ops}/readyz`)).status === 200 ? true : undefined),
      { timeoutMs: 60_000, what: 'the controller ready once NATS is up' },
    );
    assert.ok(controller.running, 'it never exited');
  } finally {
    await controller.stop();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('alcor nats-config: a stock nats-server runs what it writes; the services connect as their roles, a client without a key is refused', async () => {
  const dir = runDir('alcor-byo-nats-');
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  const topology = join(dir, 'hosts.json');
  writeFileSync(topology, JSON.stringify({ hosts: makeHosts(1, 2, 'byo') }));
  const conf = join(dir, 'conf');
  const written = await runCli([
    'nats-config',
    '--out',
    conf,
    '--hosts',
    topology,
    '--listen',
    '127.0.0.1',
    '--port',
    String(port),
    '--monitor-port',
    '0',
    '--store-dir',
    join(dir, 'js'),
  ]);
  assert.is(written.code, 0, written.stderr);
  assert.match(written.stdout, /2 hosts, one seed each/);
  // Bad input: refused, naming the option or the file.
  for (const [args, said] of [
    [['--port', '70000'], /--port.*a port from 0 to 65535/],
    [['--bucket-count', '0'], /--bucket-count.*a whole number ≥ 1/],
    [['--hosts', join(dir, 'nowhere.yaml')], /nowhere\.yaml/],
  ] as const) {
    const bad = await runCli(['nats-config', '--out', join(dir, 'bad'), ...args]);
    assert.ok(bad.code !== 0, `${args.join(' ')} refused`);
    assert.match(bad.stderr, said);
  }
  const server = new ManagedProcess({
    name: 'byo-nats',
    command: (await ensureNatsServerBinary()).path,
    args: ['-c', join(conf, 'nats.conf')],
    logFile: join(dir, 'nats.log'),
  });
  const seed = (role: string) => join(conf, 'credentials', `${role}.nk`);
  let controller: Awaited<ReturnType<typeof startTestController>> | undefined;
  try {
    await server.waitUntilReady(async () => {
      try {
        await (
          await connectNats(url, { name: 'probe', reconnect: false, nkeySeedFile: seed('service') })
        ).close();
        return true;
      } catch {
        return false;
      }
    }, 20_000);
    // The controller as its role: its layout and mapping checks pass on this server.
    controller = await startTestController(url, { nkeySeedFile: seed('controller') });
    const client = await connectNats(url, {
      name: 'byo-client',
      reconnect: false,
      nkeySeedFile: seed('client'),
    });
    try {
      const [reply] = await applyProgrammed<ApplyReplyItem[]>(client, [
        { id: 'byo-vpc', kind: 'vpc.create', vpcId: 'byo', spec: { cidr: '10.0.0.0/16' } },
      ]);
      assert.is(reply?.outcome, 'accepted', JSON.stringify(reply));
    } finally {
      await client.close();
    }
    // Without a key: refused.
    const refused = await connectNats(url, {
      name: 'no-key',
      reconnect: false,
      nkeySeedFile: '',
    }).then(
      async (nc) => {
        await nc.close();
        return false;
      },
      () => true,
    );
    assert.ok(refused, 'a client without a key cannot connect');
  } finally {
    await controller?.stop();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('positive control: with the mapping the controller starts and an intent is accepted', async () => {
  const server = await isolatedNats();
  const controller = await startTestController(server.url);
  try {
    const [reply] = await applyProgrammed<ApplyReplyItem[]>(server.nc, [
      { id: 'layout-vpc', kind: 'vpc.create', vpcId: 'layout', spec: { cidr: '10.0.0.0/16' } },
    ]);
    assert.is(reply?.outcome, 'accepted', JSON.stringify(reply));
    assert.is(await streamCount(server.jsm, streams.intents), 1, 'one intent stored, no probe');
  } finally {
    await controller.stop();
    await server.stop();
  }
});

test.run();
