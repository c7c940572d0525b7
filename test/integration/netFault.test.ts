/**
 * The fault suite's real network faults (test/support/netFault.ts), tested on a
 * process of their own: a child in a cgroup connects to a TCP server over and
 * over. A drop cut makes its connects time out and a reset cut makes them fail at
 * once, while this process (not in the cgroup) still connects; a heal lets the
 * child through again.
 */
import { createServer, connect, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ManagedProcess, runDir } from '../../infra/index.js';
import { NetFaults } from '../support/netFault.js';
import { eventually } from '../support/eventually.js';

interface Ctx {
  server: Server;
  port: number;
  net: NetFaults;
  child: ManagedProcess;
}

const test = suite<Ctx>('real network faults (nftables on a cgroup)');

/** Connects every 150 ms (timeout 400 ms); prints `ok`, or the error's code. */
const PROBE = `
const net = require('node:net');
const port = Number(process.argv[1]);
setInterval(() => {
  const s = net.connect({ host: '127.0.0.1', port });
  const t = setTimeout(() => { console.log('fail TIMEOUT'); s.destroy(); }, 400);
  s.on('connect', () => { clearTimeout(t); s.write('x'); });
  s.on('data', () => { console.log('ok'); s.destroy(); });
  s.on('error', (e) => { clearTimeout(t); console.log('fail ' + e.code); });
}, 150);
`;

test.before(async (ctx) => {
  ctx.server = createServer((s) => s.on('data', (d) => s.end(d)));
  await new Promise<void>((r) => ctx.server.listen(0, '127.0.0.1', r));
  ctx.port = (ctx.server.address() as { port: number }).port;
  ctx.net = await NetFaults.open(`nft${process.pid}`);
  if (ctx.net.available !== true)
    throw new Error(`network faults are not available here: ${ctx.net.available}`);
  const dir = runDir('alcor-netfault-');
  ctx.child = new ManagedProcess({
    name: 'probe',
    command: process.execPath,
    args: ['-e', PROBE, String(ctx.port)],
    logFile: join(dir, 'probe.log'),
    cgroup: ctx.net.cgroup('probe'),
  });
});

test.after(async (ctx) => {
  await ctx.child?.stop();
  await ctx.net?.close();
  ctx.server?.close();
});

/** The probe's lines so far (none before its log exists). */
function lines(ctx: Ctx): string[] {
  try {
    return readFileSync(ctx.child.logFile, 'utf8').split('\n').slice(0, -1);
  } catch {
    return [];
  }
}

/** The probe's lines from now on, once `n` have come. */
async function nextLines(ctx: Ctx, n: number): Promise<string[]> {
  const from = lines(ctx).length;
  return eventually(
    () => {
      const now = lines(ctx).slice(from);
      return now.length >= n ? now.slice(0, n) : undefined;
    },
    { timeoutMs: 10_000, what: `${n} probe lines` },
  );
}

/** Waits until the probe's last three lines are `ok` (connects in flight at the heal time out first). */
async function connectsAgain(ctx: Ctx): Promise<void> {
  await eventually(() => lines(ctx).slice(-3).join() === 'ok,ok,ok' || undefined, {
    timeoutMs: 10_000,
    what: 'the probe connecting again',
  });
}

/** Whether this process (outside the cgroup) connects and gets an echo. */
function outsiderConnects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const t = setTimeout(() => (s.destroy(), resolve(false)), 1000);
    s.on('connect', () => s.write('y'));
    s.on('data', () => (clearTimeout(t), s.destroy(), resolve(true)));
    s.on('error', () => (clearTimeout(t), resolve(false)));
  });
}

test('drop: the cgroup times out, others connect; heal: it connects again', async (ctx) => {
  assert.equal(await nextLines(ctx, 3), ['ok', 'ok', 'ok'], 'before the cut');
  const cut = await ctx.net.cut({ group: 'probe', to: [ctx.port], mode: 'drop' });
  try {
    await nextLines(ctx, 3); // connects that began before the cut
    const during = await nextLines(ctx, 4);
    assert.ok(
      during.every((l) => l === 'fail TIMEOUT'),
      `dropped: ${during.join(', ')}`,
    );
    assert.ok(await outsiderConnects(ctx.port), 'a process outside the cgroup still connects');
  } finally {
    await cut.heal();
  }
  await connectsAgain(ctx);
});

test('reset: the cgroup is refused at once', async (ctx) => {
  const cut = await ctx.net.cut({ group: 'probe', to: [ctx.port], mode: 'reset' });
  try {
    await nextLines(ctx, 3);
    const during = await nextLines(ctx, 4);
    assert.ok(
      during.every((l) => /^fail (ECONNREFUSED|ECONNRESET)$/.test(l)),
      `reset: ${during.join(', ')}`,
    );
    assert.ok(await outsiderConnects(ctx.port));
  } finally {
    await cut.heal();
  }
  await connectsAgain(ctx);
});

test.run();
