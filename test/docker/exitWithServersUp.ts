/**
 * A process that provisions its servers through Docker and exits without stopping
 * them (as a test file run alone, or a crash, does): the containers must not
 * outlive it. Used by testcontainers.test.ts.
 */
import { provisionServers } from '../../infra/index.js';

const servers = await provisionServers({ kafkaClusters: [] });
process.stdout.write(`up: ${servers.nats.source} ${servers.nats.endpoint}\n`);
process.exit(0);
