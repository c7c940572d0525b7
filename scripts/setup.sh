#!/usr/bin/env bash
# Set-up shared by the README's two commands: system packages and npm modules.
# Idempotent: installs only what is missing, re-runs `npm ci` only when the lock
# file changed. The servers themselves (nats-server build, Kafka jars) are
# provisioned and cached by infra/local on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*" >&2; }

# Node: a maintained LTS (24). A machine whose Node is older (20 reached its end of
# life in April 2026) gets node@24 from the npm registry (the `node` package
# carries the platform's binary) in .cache/node; scripts/node-path.sh puts it first
# on PATH for the README's commands and what they start.
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 24 ]; then
  if ! command -v npm >/dev/null; then
    say "Node 24 is needed (found: $(node -v 2>/dev/null || echo none)) and there is no npm to fetch it"; exit 1
  fi
  if [ "$(.cache/node/node_modules/node/bin/node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" != 24 ]; then
    say "Node $(node -v 2>/dev/null || echo none) is older than the LTS this runs on: fetching node@24 into .cache/node"
    mkdir -p .cache/node
    npm install --no-save --no-audit --no-fund --loglevel=error --prefix .cache/node node@24 >/dev/null
  fi
fi
. ./scripts/node-path.sh

# System packages, only those missing and only when the servers are not given in
# the environment. Go builds the pinned nats-server; without Go, Debian's older
# nats-server is the fallback (with a warning at start-up).
want=()
if [ -z "${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null; then want+=(redis-server); fi
# The local CA and the servers' certificates (TLS, unless ALCOR_TLS=off).
command -v openssl >/dev/null || want+=(openssl)
if [ -z "${KAFKA_A_BROKERS:-}" ]; then
  command -v java >/dev/null || want+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || want+=(maven)
fi
# The fault suites' real network cuts (nftables on the services' cgroups; root only).
if [ "$(id -u)" -eq 0 ] && ! command -v nft >/dev/null; then want+=(nftables); fi
if [ -z "${NATS_URL:-}" ] && ! command -v go >/dev/null && ! command -v nats-server >/dev/null \
   && [ -z "${ALCOR_NATS_SERVER_BIN:-}" ]; then
  want+=(nats-server)
fi
if [ ${#want[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      say "missing packages: ${want[*]} — install them (apt-get install ${want[*]}) and run again"; exit 1
    fi
  fi
  say "installing ${want[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi

# npm modules: `npm ci` when node_modules is missing or the lock file changed.
mkdir -p .cache
# (again when Node's major version changed: some optional modules are built for it)
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1) node$(node -p 'process.versions.node.split(".")[0]')"
if [ ! -d node_modules ] || [ "$(cat .cache/npm-lock.sha256 2>/dev/null)" != "$lock_sum" ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > .cache/npm-lock.sha256
fi

# The compiled output the CLI and the services' processes run from (dist/; tsx is
# only for development): incremental, a few seconds when nothing changed.
node node_modules/typescript/bin/tsc -p tsconfig.build.json
