/**
 * The VPC↔host mapping is a derived index (DESIGN §2): when Redis loses it
 * (restarted empty), the owners write it again from their VPCs. The mapping has a
 * generation (HostMapping.generation), named anew when it is found empty, and a
 * mark per bucket: the generation the bucket's VPCs were last written for. Every
 * `checkMs` a controller compares the marks of the buckets it works with the
 * generation; for each bucket not marked with it, it wakes the bucket's VPCs
 * (hydrating passive ones), writes each one's entry where it is missing, and marks
 * the bucket. Marks live in Redis, so they are lost with the mapping, and a bucket
 * that moves before its pass is done is finished by its next owner. Until a bucket
 * is done, entries come back one by one too: on a VPC's next commit (a delta on a
 * missing entry writes the whole set) and when a southbound module asks for one.
 *
 * On a Redis Cluster a failover can lose the last writes of the failed master's
 * slots: its replica is promoted with what it had. Every check also compares
 * which node masters which slots with the last look; a change names a new
 * generation, and every bucket's entries are written again (an entry older than
 * its VPC's revision is replaced whole).
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../../infra/index.js';
import { bucketOf, streams, subjects, type HostMapping } from '../../../shared/index.js';
import type { ControllerMetrics } from '../metrics.js';
import type { VpcLanes } from './lanes.js';

/** Writes a VPC's host set to the mapping if its entry is missing (its lane loaded first). */
export async function ensureVpcMapping(
  lanes: VpcLanes,
  vpcId: string,
  bucket: number,
): Promise<void> {
  const lane = await lanes.load(vpcId, bucket);
  await lane.ensureMapping();
}

export interface MappingRebuildDeps {
  nc: NatsConnection;
  mapping: HostMapping;
  lanes: VpcLanes;
  /** The buckets worked now. */
  owned: () => readonly number[];
  bucketCount: number;
  metrics: ControllerMetrics;
  logger: Logger;
  checkMs: number;
  /** VPCs restored at once. */
  concurrency?: number;
}

export function startMappingRebuild(deps: MappingRebuildDeps): { stop: () => Promise<void> } {
  const { mapping, logger } = deps;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<void> = Promise.resolve();
  /** Which node mastered which slots at the last look (a Redis Cluster only). */
  let lastMasters: string | undefined;

  /** Writes the missing entries of these buckets' VPCs; marks each bucket done. */
  const rebuild = async (generation: string, buckets: readonly number[]): Promise<void> => {
    const started = Date.now();
    const todo = new Set(buckets);
    const jsm = await jetstreamManager(deps.nc);
    const info = await jsm.streams.info(streams.events, { subjects_filter: subjects.eventsAll });
    // The VPCs of these buckets: every `evt.<vpc>` subject EVENTS holds.
    const vpcIds = Object.keys(info.state.subjects ?? {})
      .map((s) => s.slice(s.indexOf('.') + 1))
      .filter((vpcId) => todo.has(bucketOf(vpcId, deps.bucketCount)));
    const before = deps.metrics.mappingRestores;
    const failedBuckets = new Set<number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (!stopped && next < vpcIds.length) {
        const vpcId = vpcIds[next++]!;
        const bucket = bucketOf(vpcId, deps.bucketCount);
        try {
          await ensureVpcMapping(deps.lanes, vpcId, bucket);
        } catch (err) {
          failedBuckets.add(bucket);
          logger.warn({ vpcId, err }, 'mapping entry not rebuilt');
        }
      }
    };
    await Promise.all(Array.from({ length: deps.concurrency ?? 16 }, worker));
    // A bucket given away meanwhile is left unmarked: its next owner goes over it.
    const owned = new Set(deps.owned());
    const done = [...todo].filter((b) => !failedBuckets.has(b) && owned.has(b));
    if (!stopped) await mapping.markRebuilt(done, generation);
    deps.metrics.mappingRebuilds += 1;
    logger.info(
      {
        generation,
        buckets: done.length,
        left: todo.size - done.length,
        vpcs: vpcIds.length,
        restored: deps.metrics.mappingRestores - before,
        ms: Date.now() - started,
      },
      'VPC↔host mapping written for the buckets worked',
    );
  };

  /** A failover since the last look: a new generation, so every owner writes its VPCs again. */
  const failedOver = async (): Promise<void> => {
    const masters = await mapping.masters();
    const before = lastMasters;
    if (masters === undefined || masters === before) return;
    if (before !== undefined) {
      const { id } = await mapping.generation();
      await mapping.renewGeneration(id);
      deps.metrics.mappingFailovers += 1;
      logger.warn(
        { before, after: masters },
        'Redis Cluster masters changed (a failover may have lost writes): writing the mapping again',
      );
    }
    lastMasters = masters;
  };

  const check = async (): Promise<void> => {
    await failedOver();
    const owned = deps.owned();
    if (owned.length === 0) return;
    const { id, created } = await mapping.generation();
    const marks = await mapping.rebuiltFor(owned);
    const todo = owned.filter((_, i) => marks[i] !== id);
    if (todo.length === 0) return;
    logger[created ? 'warn' : 'info'](
      { generation: id, created, buckets: todo.length },
      created
        ? 'VPC↔host mapping found empty: writing it'
        : 'buckets not yet written for this mapping generation: writing them',
    );
    await rebuild(id, todo);
  };

  const tick = (): void => {
    pass = check()
      .catch((err: unknown) => logger.warn({ err }, 'mapping generation check failed'))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, deps.checkMs);
      });
  };
  tick();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await pass;
    },
  };
}
