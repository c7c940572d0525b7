/**
 * Is the server's `partition()` subject mapping in place (DESIGN §4.1)? Without it
 * a client's `intent.<vpcId>` matches no stream: every intent is refused and the
 * services look healthy. Checked at start, without storing anything: a JetStream
 * publish to `intent.<probe>` that expects a stream of a name none has. A stream
 * took the subject (the mapping made it `intent.<bucket>.<probe>`) if the server
 * answers "expected stream does not match"; nobody answers if none did. Call it
 * after the streams are declared (ensureLayout).
 */
import { JetStreamApiError, jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { ConfigError, streams, subjects } from '../../shared/index.js';

const PROBE_VPC = 'alcor-layout-probe';
const NO_SUCH_STREAM = 'ALCOR_LAYOUT_PROBE_NONE';
/** nats-server's JSStreamNotMatchErr: "expected stream does not match". */
const STREAM_NOT_MATCH = 10060;

export async function checkIntentMapping(nc: NatsConnection, bucketCount: number): Promise<void> {
  try {
    await jetstream(nc).publish(subjects.intent(PROBE_VPC), new Uint8Array(0), {
      expect: { streamName: NO_SUCH_STREAM },
      timeout: 5_000,
    });
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === STREAM_NOT_MATCH) return;
    // The client says "jetstream is not enabled" when no stream answers a publish
    // (the streams were just declared: none took the subject); with accounts, a
    // publish the mapping did not rewrite is a permissions violation instead.
    const text = String((err as Error).message ?? err);
    throw new ConfigError(
      'NATS_URL',
      `the NATS server has no subject mapping for intents (${subjects.intent(PROBE_VPC)}: ${text}). ` +
        `Add to its configuration, in the account the services use: ` +
        `mappings { "${subjects.intentMappingSource}": "${subjects.intentMappingDestination(bucketCount)}" } ` +
        `so that stream ${streams.intents} stores the intents (docs/deploy.md)`,
    );
  }
  // Stored after all (a stream named so exists?): impossible by the name; say so.
  throw new ConfigError(
    'NATS_URL',
    `the layout probe on ${subjects.intent(PROBE_VPC)} was stored: a stream named ${NO_SUCH_STREAM} exists`,
  );
}
