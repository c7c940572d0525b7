/**
 * The VPC↔host mapping is a derived index (DESIGN §2): when Redis loses it
 * (restarted empty), the owners write it again from their VPCs. Every `checkMs` a
 * controller reads the mapping's generation (HostMapping.generation); one it has
 * not rebuilt for means the mapping was found empty since, so it writes the entry
 * of every VPC of the buckets it works now — each VPC's actor woken (hydrated if
 * passive) and its host set restored where missing. Until then, entries come back
 * one by one: on a VPC's next commit (a delta on a missing entry writes the whole
 * set) and when a southbound module asks for one it needs.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../infra/index.js';
import { bucketOf, streams, subjects, type HostMapping } from '../../shared/index.js';
import type { ControllerMetrics } from './metrics.js';
import type { VpcActors } from './vpcActors.js';

/** Writes a VPC's host set to the mapping if its entry is missing (its actor woken first). */
export async function ensureVpcMapping(
  actors: VpcActors,
  vpcId: string,
  bucket: number,
): Promise<void> {
  const worker = await actors.wake(vpcId, bucket, 1);
  await worker.ensureMapping();
}

export interface MappingRebuildDeps {
  nc: NatsConnection;
  mapping: HostMapping;
  actors: VpcActors;
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
  let rebuiltFor: string | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<void> = Promise.resolve();

  const rebuild = async (generation: string): Promise<void> => {
    const started = Date.now();
    const owned = new Set(deps.owned());
    const jsm = await jetstreamManager(deps.nc);
    const info = await jsm.streams.info(streams.events, { subjects_filter: subjects.eventsAll });
    const vpcIds = Object.keys(info.state.subjects ?? {})
      .map((s) => s.slice(s.indexOf('.') + 1))
      .filter((v) => owned.has(bucketOf(v, deps.bucketCount)));
    const before = deps.metrics.mappingRestores;
    let failed = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (!stopped && next < vpcIds.length) {
        const vpcId = vpcIds[next++]!;
        try {
          await ensureVpcMapping(deps.actors, vpcId, bucketOf(vpcId, deps.bucketCount));
        } catch (err) {
          failed += 1;
          logger.warn({ vpcId, err }, 'mapping entry not rebuilt');
        }
      }
    };
    await Promise.all(Array.from({ length: deps.concurrency ?? 16 }, worker));
    deps.metrics.mappingRebuilds += 1;
    logger.info(
      {
        generation,
        buckets: owned.size,
        vpcs: vpcIds.length,
        restored: deps.metrics.mappingRestores - before,
        failed,
        ms: Date.now() - started,
      },
      'VPC↔host mapping rebuilt for the buckets worked',
    );
    // A VPC that could not be restored is retried by the next pass.
    if (failed === 0) rebuiltFor = generation;
  };

  let first = true;
  const check = async (): Promise<void> => {
    const { id, created } = await mapping.generation();
    const starting = first;
    first = false;
    if (id === rebuiltFor) return;
    // Starting up against a mapping that was not lost: nothing to rebuild.
    if (starting && !created) {
      rebuiltFor = id;
      return;
    }
    if (starting) logger.info({ generation: id }, 'VPC↔host mapping is new: writing it');
    else logger.warn({ generation: id, created }, 'VPC↔host mapping found lost: rebuilding it');
    await rebuild(id);
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
