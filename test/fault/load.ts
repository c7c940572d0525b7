/**
 * A steady intent load from the northbound side, as a careful client sends it:
 * one lane per VPC, each publishing its VPC's intents in order through JetStream
 * (`intent.<vpcId>`, `Nats-Msg-Id` = intent id) and waiting for the stream's ack
 * before the next. A publish that fails (server down, link cut, timeout) is sent
 * again with the same id until it is acknowledged: at-least-once from the client,
 * deduplicated by the stream and by the VPC actor. What was acknowledged, when,
 * and in which order per VPC, is recorded: that is what must never be lost.
 */
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../infra/index.js';
import { subjects, type HostRecord } from '../../shared/index.js';
import { vpcScript } from '../support/workload.js';

export interface Acked {
  id: string;
  vpcId: string;
  /** When the client first tried to send it (ms since epoch). */
  sentAt: number;
  /** When the publisher got the stream's ack. */
  ackedAt: number;
}

export interface LoadOptions {
  lanes: number;
  /** Intents per second over all lanes. */
  perSecond: number;
  /** Intents per VPC; then the lane goes on with a new VPC. */
  vpcLength: number;
  hosts: readonly HostRecord[];
  seed: number;
  log: Logger;
}

const encoder = new TextEncoder();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class SteadyLoad {
  /** Every acknowledged intent, by id. */
  readonly acked = new Map<string, Acked>();
  /** Acknowledged intent ids per VPC, in the order they were sent. */
  readonly order = new Map<string, string[]>();
  retries = 0;
  /** Why publishes were refused (the server's or client's message), and how often. */
  readonly refusals = new Map<string, number>();
  /** Intents also sent a second time without a msg id (stored twice: the actor must ignore it). */
  duplicatesSent = 0;
  /** While true, every intent is sent twice. */
  duplicate = false;
  private running = false;
  private lanes: Array<Promise<void>> = [];
  private nextAt = 0;
  /** Per lane: its VPC generation and position in the script. */
  private readonly cursors: Array<{ gen: number; k: number; script: unknown[]; vpcId: string }>;

  constructor(
    private readonly client: NatsConnection,
    private readonly o: LoadOptions,
  ) {
    this.cursors = Array.from({ length: o.lanes }, (_, lane) => this.script(lane, 1));
  }

  private script(lane: number, gen: number) {
    const vpcId = `fv${lane}-g${gen}`;
    return {
      gen,
      k: 0,
      vpcId,
      script: vpcScript(
        vpcId,
        this.o.vpcLength,
        [...this.o.hosts],
        this.o.seed * 7919 + lane * 131 + gen,
      ),
    };
  }

  get isRunning(): boolean {
    return this.running;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.nextAt = Date.now();
    this.lanes = this.cursors.map((_, lane) => this.lane(lane));
  }

  /** Stops sending; resolves once every lane's last intent is acknowledged. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.lanes);
  }

  private async pace(): Promise<void> {
    const interval = 1000 / this.o.perSecond;
    const now = Date.now();
    this.nextAt = Math.max(now, this.nextAt + interval);
    if (this.nextAt > now) await sleep(this.nextAt - now);
  }

  private async lane(lane: number): Promise<void> {
    const js = jetstream(this.client, { timeout: 4000 });
    while (this.running) {
      await this.pace();
      if (!this.running) break;
      let c = this.cursors[lane]!;
      if (c.k >= c.script.length) c = this.cursors[lane] = this.script(lane, c.gen + 1);
      const intent = c.script[c.k] as { id: string };
      const body = encoder.encode(JSON.stringify(intent));
      // Until acknowledged, whatever happens (the stream drops a copy it already holds).
      const sentAt = Date.now();
      for (let attempt = 0; ; attempt++) {
        try {
          await js.publish(subjects.intent(c.vpcId), body, { msgID: intent.id });
          break;
        } catch (err) {
          this.retries += 1;
          const why = (err as Error).message.slice(0, 80);
          this.refusals.set(why, (this.refusals.get(why) ?? 0) + 1);
          if (attempt % 20 === 0)
            this.o.log.debug(
              { intentId: intent.id, err: (err as Error).message },
              'publish retried',
            );
          await sleep(Math.min(1000, 100 * (attempt + 1)));
        }
      }
      this.acked.set(intent.id, { id: intent.id, vpcId: c.vpcId, sentAt, ackedAt: Date.now() });
      const list = this.order.get(c.vpcId) ?? [];
      list.push(intent.id);
      this.order.set(c.vpcId, list);
      c.k += 1;
      if (this.duplicate) {
        // A client that re-sends without the header: JetStream stores it a second time.
        this.client.publish(subjects.intent(c.vpcId), body);
        this.duplicatesSent += 1;
      }
    }
  }
}
