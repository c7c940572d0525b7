/**
 * Test ACAs in a process of their own (the demo and `bench:aca` fork it): an ACA
 * is on another machine than the control plane, and here it must not share an
 * event loop with the load generator. Arguments: the count, and `long-lived` to
 * keep streams open. Over the IPC channel: it sends
 * `{addresses}` once listening; `report` is answered with every ACA's programmed
 * resources and counters; `stop` ends it (so does the parent's exit).
 */
import { TestAca, type TestAcaReport } from './testAca.js';

const count = Number(process.argv[2] ?? '1');
// `long-lived`: streams stay open (Alcor's ACA closes each after its reply).
const longLived = process.argv[3] === 'long-lived';
if (!process.send || !Number.isInteger(count) || count < 1)
  throw new Error('usage: forked with an IPC channel, <count> as its argument');
const acas: TestAca[] = [];
for (let i = 0; i < count; i++) acas.push(await TestAca.start({ longLived }));
process.on('message', (m: { type?: string }) => {
  if (m.type === 'report')
    process.send!({
      type: 'report',
      models: acas.map((a) => [...a.model]),
      stats: acas.map((a) => a.stats),
    } satisfies TestAcaReport & { type: string });
  else if (m.type === 'stop')
    void Promise.all(acas.map((a) => a.stop())).then(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready', addresses: acas.map((a) => a.address) });
