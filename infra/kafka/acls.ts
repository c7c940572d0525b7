/**
 * Kafka users and ACLs per role (DESIGN §9, docs/security.md), for the KRaft
 * `StandardAuthorizer`. On each Kafka cluster:
 * - `admin` — a super user: provisioning, the operator, the test and demo harnesses;
 * - `southbound` — creates, grows and produces to the goal-state topics;
 * - `nca` — reads the goal-state topics through the agents' consumer groups.
 * Nothing else is allowed (`allow.everyone.if.no.acl.found=false`).
 */
import kafkajs, { type Admin } from 'kafkajs';
import type { KafkaSasl, KafkaTls } from './sasl.js';

// kafkajs is CommonJS: its enums are not named ESM exports.
const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs;
type AclOperationTypes = kafkajs.AclOperationTypes;
type AclResourceTypes = kafkajs.AclResourceTypes;

export type KafkaRole = 'admin' | 'southbound' | 'nca';
export const KAFKA_ROLES: readonly KafkaRole[] = ['admin', 'southbound', 'nca'];

/** The goal-state topics' common prefix (shared/subjects.ts `kafkaTopics`). */
export const GOAL_STATE_TOPIC_PREFIX = 'alcor.gs.';
/** The agents' consumer groups' prefix (services/nca/fleet.ts). */
export const AGENT_GROUP_PREFIX = 'alcor-fleet-';

interface Grant {
  resourceType: AclResourceTypes;
  resourceName: string;
  operations: AclOperationTypes[];
}

/** What each role (other than the super user) may do. */
export const KAFKA_ROLE_GRANTS: Record<Exclude<KafkaRole, 'admin'>, Grant[]> = {
  southbound: [
    {
      resourceType: AclResourceTypes.TOPIC,
      resourceName: GOAL_STATE_TOPIC_PREFIX,
      operations: [
        AclOperationTypes.WRITE,
        AclOperationTypes.DESCRIBE,
        AclOperationTypes.CREATE,
        // Topics grow their partitions as hosts join.
        AclOperationTypes.ALTER,
      ],
    },
    {
      // Reads the brokers' message.max.bytes: larger goal states go as parts.
      resourceType: AclResourceTypes.CLUSTER,
      resourceName: 'kafka-cluster',
      operations: [AclOperationTypes.DESCRIBE_CONFIGS],
    },
  ],
  nca: [
    {
      resourceType: AclResourceTypes.TOPIC,
      resourceName: GOAL_STATE_TOPIC_PREFIX,
      operations: [AclOperationTypes.READ, AclOperationTypes.DESCRIBE],
    },
    {
      resourceType: AclResourceTypes.GROUP,
      resourceName: AGENT_GROUP_PREFIX,
      operations: [AclOperationTypes.READ, AclOperationTypes.DESCRIBE],
    },
  ],
};

/** Writes the roles' ACLs (idempotent: the same binding twice is one). */
export async function applyKafkaAcls(admin: Admin): Promise<void> {
  const acl = Object.entries(KAFKA_ROLE_GRANTS).flatMap(([role, grants]) =>
    grants.flatMap((g) =>
      g.operations.map((operation) => ({
        resourceType: g.resourceType,
        resourceName: g.resourceName,
        resourcePatternType: ResourcePatternTypes.PREFIXED,
        principal: `User:${role}`,
        host: '*',
        operation,
        permissionType: AclPermissionTypes.ALLOW,
      })),
    ),
  );
  await admin.createAcls({ acl });
}

/**
 * Connects to a cluster as its admin (over TLS when `ssl` is given), writes the
 * roles' ACLs and disconnects: what provisioning and `alcor kafka-acls` do.
 */
export async function writeKafkaAclsAs(
  brokers: string[],
  admin: KafkaSasl,
  ssl: KafkaTls | undefined,
  clientId: string,
): Promise<void> {
  const client = new kafkajs.Kafka({
    clientId,
    brokers,
    sasl: { mechanism: 'plain', ...admin },
    ...(ssl ? { ssl } : {}),
    logLevel: kafkajs.logLevel.NOTHING,
  }).admin();
  try {
    await client.connect();
    await applyKafkaAcls(client);
  } finally {
    await client.disconnect().catch(() => undefined);
  }
}
