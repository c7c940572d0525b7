export * from './servers.js';
export * from './logger.js';
export * from './nats/connect.js';
export * from './nats/nkeyAuth.js';
export * from './nats/declarations.js';
export * from './nats/serverConfig.js';
export * from './redis/probe.js';
export * from './kafka/probe.js';
export * from './kafka/sasl.js';
export { onShutdown } from './local/shutdown.js';
export { ManagedProcess, detachManagedProcesses } from './local/managedProcess.js';
export { freePort } from './local/ports.js';
export { runDir, repoRoot } from './local/cache.js';
export { cpuSnapshot, cpuSince, roleOf, type CpuByRole } from './local/cpu.js';
export {
  startLocalNats,
  startLocalNatsCluster,
  authorizeNatsHosts,
  limitFromEnv,
  NATS_SERVER_VERSION,
  type LocalNats,
  type LocalNatsCluster,
} from './local/natsServer.js';
export * from './nats/auth.js';
export {
  startLocalKafka,
  makeKafkaUsers,
  KAFKA_VERSION,
  type LocalKafka,
} from './local/kafkaServer.js';
export {
  startLocalRedis,
  startLocalRedisCluster,
  type LocalRedis,
  type LocalRedisCluster,
  type LocalRedisNode,
} from './local/redisServer.js';
export { localTlsFiles, makeTlsFiles, type TlsFiles } from './local/tls.js';
export * from './nats/jetStreamEventLog.js';
export * from './eventSourcing/commandHandler.js';
export * from './nats/intentSource.js';
export * from './nats/decisionPublisher.js';
export * from './nats/snapshotStore.js';
export * from './nats/hostDirectory.js';
export * from './nats/bucketIntake.js';
export * from './nats/membership.js';
export * from './nats/placementStore.js';
export * from './redis/hostMapping.js';
export * from './kafka/client.js';
export * from './kafka/partitions.js';
export * from './ops.js';
export * from './serviceMain.js';
export * from './nats/streamReader.js';
export * from './nats/reply.js';
export * from './secrets.js';
export * from './kafka/acls.js';
export * from './kafka/accessCheck.js';
export * from './nats/asyncPublisher.js';
export * from './nats/payloadLimit.js';
export * from './nats/mappingCheck.js';
export {
  dockerEngineUsable,
  dockerEngineVisible,
  dockerImages,
  type DockerUsable,
} from './docker.js';
export * from './aca/grpc.js';
