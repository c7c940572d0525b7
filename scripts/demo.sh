#!/usr/bin/env bash
# The main job: set-up, then the demo (servers, services, workload, summary).
# Flags are the demo's; see `./scripts/demo.sh --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. ./scripts/node-path.sh
exec node --import tsx services/demo/main.ts "$@"
