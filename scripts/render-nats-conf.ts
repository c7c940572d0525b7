// Regenerates infra/nats/nats.conf (mounted by docker-compose) from infra/nats/serverConfig.ts.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { composeNatsConfig, repoRoot } from '../infra/index.js';

writeFileSync(join(repoRoot, 'infra', 'nats', 'nats.conf'), composeNatsConfig());
