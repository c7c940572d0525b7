/**
 * gRPC with Alcor's agents (issue 26): the `alcor.schema.GoalStateProvisioner`
 * service loaded from our wire-compatible .proto files (proto/alcor), and
 * `AcaLink`, one host's connection to its Alcor Control Agent (ACA).
 *
 * Alcor's ACA reads one GoalStateV2 per PushGoalStatesStream, replies once and
 * closes the stream. A link keeps a stream open while the agent does, and opens
 * one per push once the agent has shown it closes them; either way one message is
 * in flight at a time, so replies match pushes and the agent applies in order.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type {
  AlcorGoalStateOperationReply,
  AlcorGoalStateV2,
  AlcorHostRequest,
  AlcorHostRequestReply,
} from '../../shared/index.js';
import type { Logger } from '../logger.js';

/** How messages look in code: .proto field names, enums by name, every field present. */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

/** The .proto files: next to this module, or (built, in dist/) in the source tree. */
function protoDir(): string {
  const candidates = ['./proto/', '../../../infra/aca/proto/'].map((p) =>
    fileURLToPath(new URL(p, import.meta.url)),
  );
  const found = candidates.find((dir) => existsSync(`${dir}alcor/goalstateprovisioner.proto`));
  if (!found) throw new Error(`Alcor's .proto files not found in ${candidates.join(' or ')}`);
  return found;
}

export type GoalStateProvisionerClient = grpc.Client & {
  PushGoalStatesStream: () => grpc.ClientDuplexStream<
    AlcorGoalStateV2,
    AlcorGoalStateOperationReply
  >;
  RequestGoalStates: (
    request: AlcorHostRequest,
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, reply?: AlcorHostRequestReply) => void,
  ) => grpc.ClientUnaryCall;
};
interface ProvisionerConstructor {
  new (
    address: string,
    credentials: grpc.ChannelCredentials,
    options?: grpc.ChannelOptions,
  ): GoalStateProvisionerClient;
  service: grpc.ServiceDefinition;
}

let loaded: ProvisionerConstructor | undefined;

/** The GoalStateProvisioner service: its client constructor, and `.service` to serve it. */
export function goalStateProvisioner(): ProvisionerConstructor {
  if (loaded) return loaded;
  const definition = protoLoader.loadSync('alcor/goalstateprovisioner.proto', {
    ...LOADER_OPTIONS,
    includeDirs: [protoDir()],
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    alcor: { schema: { GoalStateProvisioner: ProvisionerConstructor } };
  };
  loaded = pkg.alcor.schema.GoalStateProvisioner;
  warmUp(loaded.service);
  return loaded;
}

/**
 * protobufjs builds each message type's codec on its first use (tens of ms for
 * all of GoalStateV2's): done here, at load, rather than in the first push.
 */
function warmUp(service: grpc.ServiceDefinition): void {
  const state = (configuration: object) => ({
    x: { operation_type: 'CREATE', configuration: { id: 'x', ...configuration } },
  });
  const message = {
    host_resources: { x: { resources: [{ type: 'PORT', id: 'x' }] } },
    vpc_states: state({ gateway_ids: ['x'] }),
    subnet_states: state({
      gateway: { ip_address: 'x' },
      extra_dhcp_options: [{ name: 'x' }],
      dns_entry_list: [{ entry: 'x' }],
    }),
    port_states: state({
      host_info: { ip_address: 'x' },
      fixed_ips: [{ ip_address: 'x' }],
      allow_address_pairs: [{ ip_address: 'x' }],
      security_group_ids: [{ id: 'x' }],
    }),
    dhcp_states: state({}),
    neighbor_states: state({
      fixed_ips: [{ ip_address: 'x' }],
      allow_address_pairs: [{ ip_address: 'x' }],
    }),
    security_group_states: state({ security_group_rules: [{ id: 'x' }] }),
    router_states: state({
      subnet_routing_tables: [
        { routing_rules: [{ id: 'x', routing_rule_extra_info: { next_hop_mac: 'x' } }] },
      ],
    }),
    gateway_states: state({ destinations: [{ ip_address: 'x' }] }),
  };
  const reply = { operation_statuses: [{ resource_id: 'x', operation_status: 'FAILURE' }] };
  const request = { state_requests: [{ request_id: 'x' }] };
  const requestReply = { operation_statuses: [{ request_id: 'x' }] };
  for (const [rpc, req, res] of [
    ['PushGoalStatesStream', message, reply],
    ['RequestGoalStates', request, requestReply],
  ] as const) {
    const method = service[rpc]!;
    method.requestDeserialize(method.requestSerialize(req));
    method.responseDeserialize(method.responseSerialize(res));
  }
}

/** No message size limit (as the ACA's server sets): a large VPC's full state is one message. */
export const UNLIMITED_MESSAGES: grpc.ChannelOptions = {
  'grpc.max_send_message_length': -1,
  'grpc.max_receive_message_length': -1,
};

export interface AcaLinkOptions {
  /** The agent's `host:port` (an ACA listens on 50001). */
  address: string;
  hostId: string;
  logger: Logger;
  /** How long a push waits for its reply before the agent counts as down (default 10 s). */
  replyTimeoutMs?: number;
  /** The connection to the agent was lost (it may have restarted and lost its state). */
  onLost?: () => void;
}

export class AcaUnavailable extends Error {
  override name = 'AcaUnavailable';
}

interface OpenStream {
  call: grpc.ClientDuplexStream<AlcorGoalStateV2, AlcorGoalStateOperationReply>;
  closed: boolean;
  waiting?: { resolve: (r: AlcorGoalStateOperationReply) => void; reject: (e: Error) => void };
}

/** One host's connection to its ACA. */
export class AcaLink {
  private readonly client: GoalStateProvisionerClient;
  private stream: OpenStream | undefined;
  /** The agent closes each stream after its reply (as Alcor's ACA does). */
  private oneShot = false;
  private wasReady = false;
  private closed = false;

  constructor(private readonly options: AcaLinkOptions) {
    const Provisioner = goalStateProvisioner();
    this.client = new Provisioner(options.address, grpc.credentials.createInsecure(), {
      ...UNLIMITED_MESSAGES,
      // A link idle for long is not an agent lost (idle would read as a disconnect).
      'grpc.client_idle_timeout_ms': 2 ** 31 - 1,
      // The bridge retries itself (a FULL after a failure): no buffered copy per call.
      'grpc.enable_retries': 0,
      // No channelz bookkeeping per call.
      'grpc.enable_channelz': 0,
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 5000,
    });
    this.watch(this.client.getChannel().getConnectivityState(true));
  }

  get address(): string {
    return this.options.address;
  }

  /** Connected to the agent now. */
  ready(): boolean {
    return this.client.getChannel().getConnectivityState(false) === grpc.connectivityState.READY;
  }

  /** Waits up to `ms` for the connection (connecting if idle); whether it is up. */
  async waitReady(ms: number): Promise<boolean> {
    if (this.ready()) return true;
    return new Promise((resolve) =>
      this.client.waitForReady(Date.now() + ms, (err) => resolve(!err)),
    );
  }

  /** Follows the channel: leaving READY after having been there is a lost agent. */
  private watch(state: grpc.connectivityState): void {
    if (this.closed) return;
    const channel = this.client.getChannel();
    if (state === grpc.connectivityState.READY) this.wasReady = true;
    else if (this.wasReady) {
      this.wasReady = false;
      this.failStream(new AcaUnavailable(`connection to the ACA at ${this.address} lost`));
      this.options.onLost?.();
    }
    // Reconnect at once (with the channel's backoff) rather than on the next push.
    if (state === grpc.connectivityState.IDLE) channel.getConnectivityState(true);
    // The deadline only bounds one watch (the callback then sees the same state).
    channel.watchConnectivityState(state, Date.now() + 3_600_000, () => {
      this.watch(channel.getConnectivityState(false));
    });
  }

  /** Ends a stream (the open one by default) and fails the push waiting on it. */
  private failStream(err: Error, s = this.stream): void {
    if (!s) return;
    if (this.stream === s) this.stream = undefined;
    s.closed = true;
    s.waiting?.reject(err);
    s.waiting = undefined;
    s.call.cancel();
  }

  private open(): OpenStream {
    const call = this.client.PushGoalStatesStream();
    const s: OpenStream = { call, closed: false };
    // The error is made only when a push waits on the stream (most ends are after
    // the reply, and an Error's stack is not free).
    const close = (err: () => Error): void => {
      s.closed = true;
      if (this.stream === s) this.stream = undefined;
      s.waiting?.reject(err());
      s.waiting = undefined;
    };
    call.on('data', (reply: AlcorGoalStateOperationReply) => {
      const w = s.waiting;
      s.waiting = undefined;
      w?.resolve(reply);
    });
    call.on('error', (err: grpc.ServiceError) =>
      close(
        () => new AcaUnavailable(`ACA stream failed: ${err.code} ${err.details || err.message}`),
      ),
    );
    call.on('end', () => close(() => new StreamEnded('the ACA closed the stream')));
    return s;
  }

  /**
   * Sends one GoalStateV2 and resolves with the agent's reply and the round trip
   * in ms; rejects with AcaUnavailable when the agent cannot be reached or does
   * not answer in time (the caller backs off and pushes again).
   */
  async push(
    message: AlcorGoalStateV2,
  ): Promise<{ reply: AlcorGoalStateOperationReply; ms: number }> {
    for (let attempt = 0; ; attempt++) {
      const began = performance.now();
      try {
        const reply = await this.once(message);
        return { reply, ms: performance.now() - began };
      } catch (err) {
        // A stream the agent closed before reading this one: it closes each stream
        // after one reply (Alcor's ACA). From now on a stream per push.
        if (err instanceof StreamEnded && attempt === 0) {
          this.oneShot = true;
          continue;
        }
        throw err instanceof StreamEnded ? new AcaUnavailable(err.message) : err;
      }
    }
  }

  private once(message: AlcorGoalStateV2): Promise<AlcorGoalStateOperationReply> {
    if (this.closed) return Promise.reject(new AcaUnavailable('link closed'));
    const s = this.stream && !this.stream.closed ? this.stream : (this.stream = this.open());
    const timeoutMs = this.options.replyTimeoutMs ?? 10_000;
    return new Promise<AlcorGoalStateOperationReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.failStream(new AcaUnavailable(`no reply from the ACA in ${timeoutMs} ms`), s);
      }, timeoutMs);
      s.waiting = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      s.call.write(message);
      if (this.oneShot) {
        // As Alcor's controller does: one message, then the half-close.
        s.call.end();
        this.stream = undefined;
      }
    });
  }

  close(): void {
    this.closed = true;
    this.failStream(new AcaUnavailable('link closed'));
    this.client.close();
  }
}

class StreamEnded extends Error {
  override name = 'StreamEnded';
}

/** Serves the GoalStateProvisioner rpcs given (the others answer UNIMPLEMENTED). */
export async function serveProvisioner(
  handlers: grpc.UntypedServiceImplementation,
  address: string,
): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server({ ...UNLIMITED_MESSAGES, 'grpc.enable_channelz': 0 });
  server.addService(goalStateProvisioner().service, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { server, port };
}

/** Asks the control plane at `address` for goal states (what an ACA does; tests use it). */
export function requestGoalStates(
  address: string,
  request: AlcorHostRequest,
  timeoutMs = 5000,
): Promise<AlcorHostRequestReply> {
  const Provisioner = goalStateProvisioner();
  const client = new Provisioner(address, grpc.credentials.createInsecure());
  return new Promise<AlcorHostRequestReply>((resolve, reject) => {
    client.RequestGoalStates(request, { deadline: Date.now() + timeoutMs }, (err, reply) => {
      client.close();
      if (err) reject(err);
      else resolve(reply ?? {});
    });
  });
}

export { grpc };
