#!/usr/bin/env bash
# The test command: set-up, then static checks, unit tests and integration tests
# against real nats-server, Redis and two Kafka clusters. Ends with `N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. ./scripts/node-path.sh
exec node --import tsx test/run.ts "$@"
