/** Counters of one controller instance (read by tests, the bench and the CLI). */
export interface ControllerMetrics {
  /** Commits appended to EVENTS by this instance. */
  appended: number;
  /** Intents found already decided (log dedup or a re-sent id). */
  duplicates: number;
  /** Goal-state messages stored, and those the stream dropped as duplicates. */
  goalStates: number;
  goalStateDuplicates: number;
  /** Last commits whose goal states were published again on hydration. */
  republished: number;
  snapshots: number;
  snapshotLoads: number;
  hydrations: number;
  passivations: number;
  /** Intake deliveries refused (bad subject token, wrong bucket). */
  refused: number;
  /** VPC host sets written to Redis again after it lost them. */
  mappingRestores: number;
  /** Passes over the worked buckets' VPCs after the mapping was found lost. */
  mappingRebuilds: number;
  /** Redis Cluster failovers seen (masters of some slots changed): the mapping written again. */
  mappingFailovers: number;
  /** Full states sent on resync requests, and requests refused as malformed. */
  resyncFulls: number;
  resyncRefused: number;
  /** Resync requests told to ask again later (more waiting than the gate answers in time). */
  resyncDeferred: number;
  /** NCA acks refused as malformed. */
  acksRefused: number;
  /** Requests not answered: their reply subject was not an inbox (docs/security.md). */
  repliesRefused: number;
  /** Messages in EVENTS that are not commits: reported and passed over. */
  poisonEvents: number;
}

export function createMetrics(): ControllerMetrics {
  return {
    appended: 0,
    duplicates: 0,
    goalStates: 0,
    goalStateDuplicates: 0,
    republished: 0,
    snapshots: 0,
    snapshotLoads: 0,
    hydrations: 0,
    passivations: 0,
    refused: 0,
    mappingRestores: 0,
    mappingRebuilds: 0,
    mappingFailovers: 0,
    resyncFulls: 0,
    resyncRefused: 0,
    resyncDeferred: 0,
    acksRefused: 0,
    repliesRefused: 0,
    poisonEvents: 0,
  };
}
