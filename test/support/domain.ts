/**
 * A pure stand-in for the controller's loop, for unit and property tests: decide,
 * record at the next EVENTS sequence, evolve, project. No I/O.
 */
import {
  clusterKey,
  type GoalStateAck,
  type HostRecord,
  type RecordedCommit,
  type TopologyPlace,
  type VpcIntent,
} from '../../shared/index.js';
import { vpc as vpcActor } from '../../actors/index.js';

export type Projected = vpcActor.ProjectedMessage;

/** The id {@link makeTopology} gives host `h` of cluster `c` in region `r`. */
export const hostIdAt = (r: number, c: number, h: number): string => `h-r${r}-c${c}-${h}`;

export function makeTopology(
  options: { regions?: number; clustersPerRegion?: number; hostsPerCluster?: number } = {},
): HostRecord[] {
  const hosts: HostRecord[] = [];
  const regions = options.regions ?? 2;
  const clusters = options.clustersPerRegion ?? 2;
  const perCluster = options.hostsPerCluster ?? 3;
  for (let r = 0; r < regions; r++) {
    for (let c = 0; c < clusters; c++) {
      for (let h = 0; h < perCluster; h++) {
        hosts.push({
          hostId: hostIdAt(r, c, h),
          region: `r${r}`,
          az: `r${r}a`,
          dc: `dc${r}`,
          cluster: `c${c}`,
          underlayIp: `192.168.${r * clusters + c}.${h + 1}`,
          binding: { type: 'jetstream' },
        });
      }
    }
  }
  return hosts;
}

/** VPC `vpc-1` (10.0.0.0/16) with subnet s1 (10.0.1.0/24, gateway .1) over `hosts`. */
export function vpcWithSubnet(
  hosts: HostRecord[],
  options: { vni?: number; bucket?: number } = {},
) {
  const v = new VpcHarness('vpc-1', hosts, options.bucket);
  v.do('vpc.create', { cidr: '10.0.0.0/16', vni: options.vni ?? 7 });
  v.do('subnet.create', { subnetId: 's1', cidr: '10.0.1.0/24', gatewayIp: '10.0.1.1' });
  return v;
}

export interface Step {
  intent: VpcIntent;
  decision: vpcActor.Decision;
  recorded?: RecordedCommit;
  messages: Projected[];
}

export class VpcHarness {
  state: vpcActor.VpcState;
  readonly history: RecordedCommit[] = [];
  readonly places = new Map<string, TopologyPlace>();
  private sequence = 0;
  private cursor = 0;

  constructor(
    readonly vpcId: string,
    readonly hosts: HostRecord[],
    readonly bucket = 7,
    /** EVENTS sequences are shared by all VPCs: step by more than 1 to mimic that. */
    private readonly sequenceStep: () => number = () => 1,
  ) {
    this.state = vpcActor.initialState(vpcId);
    for (const h of hosts)
      this.places.set(h.hostId, { region: h.region, az: h.az, dc: h.dc, cluster: h.cluster });
  }

  lookupHost = (hostId: string): TopologyPlace | undefined => this.places.get(hostId);

  /** Decide, record, evolve and project one intent (or return the non-commit decision). */
  send(intent: VpcIntent): Step {
    this.cursor += 1;
    const decision = vpcActor.decide(
      { intent, cursor: this.cursor, at: '2026-11-24T12:00:00.000Z' },
      this.state,
      {
        lookupHost: this.lookupHost,
      },
    );
    if (decision.type !== 'commit') return { intent, decision, messages: [] };
    this.sequence += this.sequenceStep();
    const recorded: RecordedCommit = { revision: this.sequence, commit: decision.commit };
    this.history.push(recorded);
    this.state = vpcActor.evolve(this.state, recorded);
    return {
      intent,
      decision,
      recorded,
      messages: vpcActor.project(this.state, recorded, this.bucket),
    };
  }

  /** Sends an intent built from kind and spec, with a fresh id. */
  private counter = 0;
  do<K extends VpcIntent['kind']>(
    kind: K,
    spec: Extract<VpcIntent, { kind: K }>['spec'],
    extra: { expectedRevision?: number; id?: string } = {},
  ): Step {
    this.counter += 1;
    return this.send({
      id: extra.id ?? `i-${this.counter}`,
      kind,
      vpcId: this.vpcId,
      spec,
      ...(extra.expectedRevision === undefined ? {} : { expectedRevision: extra.expectedRevision }),
    } as VpcIntent);
  }

  /** The error code of a rejected step, or 'accepted'. */
  static outcome(step: Step): string {
    if (step.decision.type !== 'commit') return step.decision.type;
    const first = step.decision.commit.events[0];
    return first?.type === 'IntentRejected' ? first.code : 'accepted';
  }

  clusterOf(hostId: string): string {
    return clusterKey(this.places.get(hostId)!);
  }
}

/** Folds a recorded history from scratch. */
export function fold(vpcId: string, history: readonly RecordedCommit[]): vpcActor.VpcState {
  let state = vpcActor.initialState(vpcId);
  for (const recorded of history) state = vpcActor.evolve(state, recorded);
  return state;
}

/** An accepted intent of VPC `v1` waiting for `hosts` at `revision` (the programmed tests). */
export const trackedIntent = (
  id: string,
  revision: number,
  hosts: string[],
  bucket = 7,
): vpcActor.TrackedIntent => ({ intentId: id, vpcId: 'v1', bucket, revision, hosts });

/** A host's ack of VPC `v1` at `revision`: an applied delta unless `extra` says otherwise. */
export const goalStateAck = (
  hostId: string,
  revision: number,
  extra: Partial<GoalStateAck> = {},
): GoalStateAck => ({
  vpcId: 'v1',
  hostId,
  revision,
  mode: 'delta',
  status: 'applied',
  ...extra,
});
