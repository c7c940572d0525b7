/**
 * One goal-state message through an agent (DESIGN §4.5, §7): apply it to the
 * host's model, say what to ack, and whether the host's set of VPCs changed (a
 * JetStream agent then subscribes to, or leaves, the VPC's multicast subject).
 * A message with an op the host cannot apply is not applied at all and acked
 * `failed` with the op named.
 */
import type { GoalStateAck, GoalStateMessage, GoalStateOp } from '../../shared/index.js';
import { apply, hostsVpc, type ApplyResult, type HostModel } from './model.js';

export interface Handled {
  ack: GoalStateAck;
  result: ApplyResult | undefined;
  /** Did the host hold the VPC before the message (or is this a full for it)? */
  needed: boolean;
  /** The host's membership in the VPC changed: it joined or left. */
  joined: boolean;
  left: boolean;
}

/** Decides whether an op fails (tests and the demo inject failures with it). */
export type FailOp = (op: GoalStateOp, message: GoalStateMessage) => boolean;

export function handleGoalState(
  model: HostModel,
  message: GoalStateMessage,
  options: { failOp?: FailOp; now?: () => number } = {},
): Handled {
  const now = options.now ?? (() => performance.now());
  const started = now();
  const before = hostsVpc(model, message.vpcId);
  const needed = before || (message.mode === 'full' && message.target === model.hostId);
  const base = {
    hostId: model.hostId,
    vpcId: message.vpcId,
    revision: message.revision,
    mode: message.mode,
  };
  const failing = options.failOp ? message.ops.findIndex((op) => options.failOp!(op, message)) : -1;
  if (failing >= 0) {
    const op = message.ops[failing]!;
    return {
      ack: {
        ...base,
        status: 'failed',
        error: {
          code: 'apply_failed',
          message: `the dataplane refused ${op.op} ${op.key}`,
          path: `ops.${failing}`,
        },
      },
      result: undefined,
      needed,
      joined: false,
      left: false,
    };
  }
  const result = apply(model, message);
  const after = hostsVpc(model, message.vpcId);
  return {
    ack: { ...base, status: 'applied', timings: { apply: now() - started } },
    result,
    needed,
    joined: !before && after,
    left: before && !after,
  };
}
