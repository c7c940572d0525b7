/**
 * The physical topology (DESIGN §4.6–4.7): hosts placed in region / AZ / DC /
 * cluster, each bound to a Kafka cluster or to JetStream.
 */
import type { TopologyPlace } from './subjects.js';

export type { TopologyPlace } from './subjects.js';

export type HostBinding = { type: 'kafka'; cluster: string } | { type: 'jetstream' };

export interface HostRecord extends TopologyPlace {
  hostId: string;
  underlayIp: string;
  binding: HostBinding;
}

/** `region.az.dc.cluster` — the key of a cluster (and the target of a multicast). */
export function clusterKey(place: TopologyPlace): string {
  return `${place.region}.${place.az}.${place.dc}.${place.cluster}`;
}

export function placeOf(host: TopologyPlace): TopologyPlace {
  return { region: host.region, az: host.az, dc: host.dc, cluster: host.cluster };
}

/** What the edge looks up for the decider: a host's place, or undefined if unknown. */
export type HostLookup = (hostId: string) => TopologyPlace | undefined;

/** A host's binding as one word (tables, metrics labels): `jetstream` or `kafka:<cluster>`. */
export function bindingLabel(host: { binding: HostBinding }): string {
  return host.binding.type === 'kafka' ? `kafka:${host.binding.cluster}` : 'jetstream';
}

/**
 * A goal state's target (DESIGN §4.4): a host id for a unicast, a cluster key
 * (`region.az.dc.cluster`) for a multicast. Host ids hold no dot.
 */
export function isMulticast(target: string): boolean {
  return target.includes('.');
}

/** Whether a goal state with this target is meant for this host (its own, or its cluster's). */
export function addressedTo(target: string, host: TopologyPlace & { hostId: string }): boolean {
  return isMulticast(target) ? target === clusterKey(host) : target === host.hostId;
}
