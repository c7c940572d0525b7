#!/usr/bin/env bash
# The Docker tier (not part of the README's test command, which runs its servers
# as local processes): the compose deployment brought up, its scenario run to a
# clean oracle and torn down, and the demo through testcontainers. Provisions what
# it needs: Debian's docker.io and docker-compose when missing, a dockerd started
# here when no engine answers (no systemd on this kind of machine), and the images
# (./scripts/docker-images.sh). Ends with `N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[test-docker] %s\n' "$*" >&2; }

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  want=()
  command -v dockerd >/dev/null || [ -n "${DOCKER_HOST:-}" ] || want+=(docker.io)
  command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || want+=(docker-compose)
  if [ ${#want[@]} -gt 0 ]; then
    say "installing ${want[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null
  fi
fi
if ! docker info >/dev/null 2>&1; then
  if [ -n "${DOCKER_HOST:-}" ] || ! command -v dockerd >/dev/null || [ "$(id -u)" -ne 0 ]; then
    say "no Docker engine answers (DOCKER_HOST=${DOCKER_HOST:-unset}): start one and run again"; exit 1
  fi
  mkdir -p .cache/docker
  say "starting dockerd (log: .cache/docker/dockerd.log)"
  nohup dockerd >.cache/docker/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { say "dockerd did not come up: see .cache/docker/dockerd.log"; exit 1; }
fi

./scripts/docker-images.sh
. ./scripts/node-path.sh
exec node --import tsx test/run.ts --only docker "$@"
