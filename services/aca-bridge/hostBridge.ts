/**
 * One host's bridge to its Alcor Control Agent (issue 26): the dataplane behind
 * the host's agent (services/nca/hostAgent.ts keeps subscribing, ordering, gap
 * detection and resync). Each goal state the agent takes becomes Alcor resources
 * (actors/nca/alcor.ts) and is pushed to the ACA; the ACA's reply becomes the ack.
 *
 * - One GoalStateV2 in flight per host: messages taken meanwhile are queued and
 *   go out together in the next one (in order; a resource's last change wins).
 * - applied when the ACA refused none of a message's resources; failed naming
 *   each refused resource and its status otherwise. Only SUCCESS counts (PENDING
 *   too is a refusal). A resource the reply does not mention was not refused
 *   (Alcor's ACA answers for ports, DHCP and routers only).
 * - The ACA down, or its connection lost: nothing is acked; the bridge pushes
 *   again with backoff, and the next push is a FULL of everything the host must
 *   hold (the agent may have restarted empty), with DELETEs for what the queued
 *   messages removed; the queued messages are acked from its reply.
 * - RequestGoalStates from the ACA (the bridge serves it): AGENT_RESTARTED takes
 *   every VPC of the host again from the owners (a resync: their full states are
 *   pushed FULL); ON_DEMAND answers whether the destination is a port the host
 *   knows in the VPC of that tunnel id.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { grpc } from '../../infra/index.js';
import { AcaLink, AcaUnavailable, serveProvisioner, type Logger } from '../../infra/index.js';
import type {
  AlcorGoalStateOperationReply,
  AlcorHostRequest,
  AlcorHostRequestReply,
  AlcorOperationStatusEntry,
  GoalStateAck,
  GoalStateMessage,
} from '../../shared/index.js';
import { nca } from '../../actors/index.js';
import type { Dataplane, HostAgent } from '../nca/hostAgent.js';

export interface AcaBridgeStats {
  /** GoalStateV2 messages pushed and answered. */
  pushes: number;
  /** …of which FULL pushes after the connection was lost. */
  fullPushes: number;
  /** Resources the ACA refused (a status other than SUCCESS). */
  refused: number;
  /** Pushes that failed (ACA unreachable, no reply in time). */
  pushFailures: number;
  /** RequestGoalStates answered, by type. */
  restartRequests: number;
  onDemandRequests: number;
}

export const emptyBridgeStats = (): AcaBridgeStats => ({
  pushes: 0,
  fullPushes: 0,
  refused: 0,
  pushFailures: 0,
  restartRequests: 0,
  onDemandRequests: 0,
});

export interface HostBridgeOptions {
  /** The ACA's `host:port`. */
  address: string;
  /** A host's underlay IP (neighbors name their host's). */
  hostIp: (hostId: string) => string | undefined;
  logger: Logger;
  /** Serve RequestGoalStates for the ACA here (`host:port`; port 0: any). */
  listen?: string;
  replyTimeoutMs?: number;
  /** Most changes of queued messages sent in one GoalStateV2 (default 20,000). */
  maxChangesPerPush?: number;
  /** Observes a push: its round trip in ms and the resources in it. */
  onPush?: (ms: number, resources: number) => void;
}

interface Queued {
  message: GoalStateMessage;
  ack: GoalStateAck;
  changes: nca.AlcorChange[];
  requestId: string;
  at: number;
  answer: (ack: GoalStateAck) => void;
}

/** Backoff between pushes while the ACA is unreachable. */
const BACKOFF_MS = { initial: 200, max: 5000 };

export class AcaHostBridge implements Dataplane {
  readonly stats = emptyBridgeStats();
  private readonly link: AcaLink;
  private queue: Queued[] = [];
  private pumping = false;
  /** The next push is a FULL of the whole host (the ACA may have lost its state). */
  private needsFull = false;
  private stopped = false;
  private server: grpc.Server | undefined;
  /** A FULL the ACA refused part of, pushed again after this long. */
  private fullRetry: NodeJS.Timeout | undefined;
  private fullRetryMs = 500;
  /** Where the bridge answers RequestGoalStates (`host:port`), once listening. */
  requestAddress: string | undefined;
  private readonly host: nca.AlcorHost;

  constructor(
    private readonly agent: HostAgent,
    private readonly options: HostBridgeOptions,
  ) {
    const record = agent.record;
    this.host = { hostId: record.hostId, underlayIp: record.underlayIp, hostIp: options.hostIp };
    this.link = new AcaLink({
      address: options.address,
      hostId: record.hostId,
      logger: options.logger,
      ...(options.replyTimeoutMs ? { replyTimeoutMs: options.replyTimeoutMs } : {}),
      onLost: () => {
        if (this.stopped) return;
        options.logger.warn(
          { hostId: record.hostId, aca: options.address },
          'connection to the ACA lost: the next push is a FULL',
        );
        this.needsFull = true;
        void this.pump();
      },
    });
  }

  /** Starts serving RequestGoalStates, if asked to. */
  async start(): Promise<void> {
    if (!this.options.listen) return;
    const { server, port } = await serveProvisioner(
      {
        RequestGoalStates: (
          call: grpc.ServerUnaryCall<AlcorHostRequest, AlcorHostRequestReply>,
          callback: grpc.sendUnaryData<AlcorHostRequestReply>,
        ) => callback(null, this.answerRequest(call.request)),
      },
      this.options.listen,
    );
    this.server = server;
    const host = this.options.listen.slice(0, this.options.listen.lastIndexOf(':'));
    this.requestAddress = `${host}:${port}`;
  }

  get address(): string {
    return this.link.address;
  }

  /** Messages taken and not acked yet. */
  get queued(): number {
    return this.queue.length;
  }

  take(
    message: GoalStateMessage,
    apply: () => nca.Handled,
    answer: (ack: GoalStateAck) => void,
  ): nca.Handled {
    const model = this.agent.model;
    const keys = nca.touched(model, message);
    const before = nca.alcorResources(model, message.vpcId, keys, this.host);
    const handled = apply();
    if (handled.ack.status !== 'applied') {
      answer(handled.ack);
      return handled;
    }
    const after = nca.alcorResources(model, message.vpcId, keys, this.host);
    const changes = nca.changes(before, after, message.mode === 'full');
    if (changes.length === 0 && this.queue.length === 0 && !this.pumping && !this.needsFull) {
      // Nothing for the ACA (a delta delivered again), and nothing before it on
      // the way: what it asks is what the ACA already confirmed.
      answer(handled.ack);
      return handled;
    }
    this.queue.push({
      message,
      ack: handled.ack,
      changes,
      requestId: `${message.vpcId}:${message.revision}:${message.mode}`,
      at: performance.now(),
      answer,
    });
    void this.pump();
    return handled;
  }

  /** Pushes what is queued (or a FULL), one GoalStateV2 at a time, until nothing is left. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    let backoff = BACKOFF_MS.initial;
    try {
      while (!this.stopped && (this.queue.length > 0 || this.needsFull)) {
        const full = this.needsFull;
        const batch = full ? this.queue.splice(0) : this.takeBatch();
        const message = full ? this.fullPush(batch) : this.deltaPush(batch);
        let result: { reply: AlcorGoalStateOperationReply; ms: number };
        try {
          if (!(await this.link.waitReady(backoff))) throw new AcaUnavailable('ACA not reachable');
          result = await this.link.push(message);
        } catch (err) {
          this.stats.pushFailures += 1;
          // Not acked; the next try is a FULL (what the agent holds is not known).
          this.queue.unshift(...batch);
          this.needsFull = true;
          this.options.logger.debug(
            { hostId: this.agent.record.hostId, aca: this.address, err: String(err) },
            'push to the ACA failed; retrying',
          );
          await sleep(backoff);
          backoff = Math.min(BACKOFF_MS.max, backoff * 2);
          continue;
        }
        backoff = BACKOFF_MS.initial;
        if (full) {
          this.needsFull = false;
          this.stats.fullPushes += 1;
        }
        this.stats.pushes += 1;
        const resources = Object.values(message.host_resources ?? {})[0]?.resources?.length ?? 0;
        this.options.onPush?.(result.ms, resources);
        this.settle(batch, result.reply, result.ms);
        // A FULL carries resources no waiting message names: one it refused is
        // retried by another FULL, later (1 s doubling to 30 s, as an agent
        // retries a failed VPC).
        if (full && this.anyRefused(result.reply)) this.fullAgainLater();
        else if (full) this.fullRetryMs = 500;
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The queued messages to push next: in order, up to the change limit (one at least). */
  private takeBatch(): Queued[] {
    const limit = this.options.maxChangesPerPush ?? 20_000;
    let n = 0;
    let changes = 0;
    while (n < this.queue.length && (n === 0 || changes + this.queue[n]!.changes.length <= limit))
      changes += this.queue[n++]!.changes.length;
    return this.queue.splice(0, n);
  }

  private deltaPush(batch: Queued[]) {
    return nca.goalStateV2(
      this.host.underlayIp,
      batch.flatMap((q) =>
        q.changes.map((change) => ({
          change,
          state: nca.alcorState(change, {
            revision: q.message.revision,
            requestId: q.requestId,
            full: q.message.mode === 'full',
          }),
        })),
      ),
    );
  }

  /**
   * Everything the host must hold, each resource CREATE and FULL at its VPC's
   * revision here; and a DELETE for each resource the queued messages removed (the
   * agent may still have it, if it did not restart).
   */
  private fullPush(batch: Queued[]) {
    const entries: Array<{ change: nca.AlcorChange; state: ReturnType<typeof nca.alcorState> }> =
      [];
    const kept = new Set<string>();
    const model = this.agent.model;
    for (const [vpcId, all] of nca.allAlcorResources(model, this.host)) {
      const revision = model.vpcs.get(vpcId)!.revision;
      for (const [key, resource] of all) {
        kept.add(key);
        const change = { ...resource, operation: 'CREATE' as const };
        entries.push({
          change,
          state: nca.alcorState(change, {
            revision,
            requestId: `${vpcId}:${revision}:reconnect`,
            full: true,
          }),
        });
      }
    }
    for (const q of batch)
      for (const change of q.changes) {
        const key = nca.alcorKey(change.type, change.id);
        if (change.operation !== 'DELETE' || kept.has(key)) continue;
        entries.push({
          change,
          state: nca.alcorState(change, {
            revision: q.message.revision,
            requestId: q.requestId,
            full: true,
          }),
        });
      }
    return nca.goalStateV2(this.host.underlayIp, entries);
  }

  private anyRefused(reply: AlcorGoalStateOperationReply): boolean {
    return (reply.operation_statuses ?? []).some(refused);
  }

  private fullAgainLater(): void {
    if (this.fullRetry) return;
    this.fullRetryMs = Math.min(30_000, this.fullRetryMs * 2);
    this.options.logger.warn(
      { hostId: this.agent.record.hostId, aca: this.address, retryMs: this.fullRetryMs },
      'the ACA refused resources of a FULL push; pushing it again later',
    );
    this.fullRetry = setTimeout(() => {
      this.fullRetry = undefined;
      if (this.stopped) return;
      this.needsFull = true;
      void this.pump();
    }, this.fullRetryMs);
    this.fullRetry.unref();
  }

  /** Acks each message of a push from the ACA's reply. */
  private settle(batch: Queued[], reply: AlcorGoalStateOperationReply, ms: number): void {
    const statuses = new Map<string, AlcorOperationStatusEntry>();
    for (const s of reply.operation_statuses ?? [])
      statuses.set(nca.alcorKey(s.resource_type ?? 'VPC', s.resource_id ?? ''), s);
    const now = performance.now();
    for (const q of batch) {
      const refusals: string[] = [];
      let dataplane = 0;
      let netconf = 0;
      for (const change of q.changes) {
        const s = statuses.get(nca.alcorKey(change.type, change.id));
        if (!s) continue;
        dataplane += s.dataplane_programming_time ?? 0;
        netconf += s.network_configuration_time ?? 0;
        if (refused(s))
          refusals.push(`${change.type} ${change.id} ${change.operation}: ${s.operation_status}`);
      }
      this.stats.refused += refusals.length;
      const timings = {
        ...q.ack.timings,
        aca_queue: now - ms - q.at,
        aca_roundtrip: ms,
        aca_total: (reply.message_total_operation_time ?? 0) / 1000,
        dataplane_programming: dataplane / 1000,
        network_configuration: netconf / 1000,
      };
      const ack: GoalStateAck =
        refusals.length === 0
          ? { ...q.ack, timings }
          : {
              ...q.ack,
              status: 'failed',
              timings,
              error: {
                code: 'aca_refused',
                message: `the ACA refused ${refusals.length} of ${q.changes.length} resource(s): ${refusals.slice(0, 5).join('; ')}`,
              },
            };
      q.answer(ack);
    }
  }

  private answerRequest(request: AlcorHostRequest): AlcorHostRequestReply {
    const began = performance.now();
    const statuses = (request.state_requests ?? []).map((r) => {
      if (r.request_type === 'AGENT_RESTARTED') {
        this.stats.restartRequests += 1;
        this.options.logger.info(
          { hostId: this.agent.record.hostId, requestId: r.request_id },
          'the ACA restarted: taking every VPC of the host again',
        );
        this.needsFull = true;
        void this.agent.resync().then(() => this.pump());
        return { request_id: r.request_id ?? '', operation_status: 'SUCCESS' as const };
      }
      this.stats.onDemandRequests += 1;
      const known = this.knows(r.tunnel_id ?? 0, r.destination_ip ?? '');
      return { request_id: r.request_id ?? '', operation_status: known ? 'SUCCESS' : 'FAILURE' };
    });
    return {
      format_version: 1,
      operation_statuses: statuses as AlcorHostRequestReply['operation_statuses'],
      total_operation_time: Math.round((performance.now() - began) * 1000),
    };
  }

  /** Is `ip` a port of the VPC whose VNI is `tunnelId`, as the host knows it? */
  private knows(tunnelId: number, ip: string): boolean {
    for (const vpc of this.agent.model.vpcs.values()) {
      const own = vpc.resources.get('vpc');
      if (!own || own.deleted || (own.value as { vni?: number }).vni !== tunnelId) continue;
      for (const entry of vpc.resources.values())
        if (
          !entry.deleted &&
          (entry.kind === 'neighbor' || entry.kind === 'port') &&
          (entry.value as { ip?: string }).ip === ip
        )
          return true;
    }
    return false;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.fullRetry);
    this.link.close();
    this.server?.forceShutdown();
  }
}

/** A status other than SUCCESS (an absent one is SUCCESS, proto3's default). */
const refused = (s: AlcorOperationStatusEntry): boolean =>
  (s.operation_status ?? 'SUCCESS') !== 'SUCCESS';
