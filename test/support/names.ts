import { randomBytes } from 'node:crypto';

let counter = 0;

/**
 * A name no other test (or earlier run against the same servers) uses; valid as a
 * NATS subject token, stream name, Kafka topic, consumer group and Redis key part.
 */
export function unique(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}-${randomBytes(3).toString('hex')}`;
}
