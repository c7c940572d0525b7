#!/usr/bin/env bash
# Builds this system's images (deploy/docker/Dockerfile) with no image registry:
# a Debian base made with debootstrap from the machine's Debian mirror and
# `docker import`ed, then one target per server and one for the services, from a
# context staged in .cache/docker: the compiled output (dist/), the production
# node_modules, and the binaries the set-up provisions (nats-server, Kafka's jars,
# Node). Idempotent: the base is made once; the rest rebuilds from the layer cache.
#   ./scripts/docker-images.sh            build (needs a Docker engine that answers)
#   ./scripts/docker-images.sh --list     print the image names
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[docker-images] %s\n' "$*" >&2; }

version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)
nats_version=$(sed -n "s/^export const NATS_SERVER_VERSION = 'v\(.*\)';/\1/p" infra/local/natsServer.ts)
kafka_version=$(sed -n "s/^export const KAFKA_VERSION = '\(.*\)';/\1/p" infra/local/kafkaServer.ts)
base=alcor-southbound/debian:bookworm
declare -A images=(
  [nats]="alcor-southbound/nats:$nats_version"
  [kafka]="alcor-southbound/kafka:$kafka_version"
  [redis]="alcor-southbound/redis:7.0"
  [alcor]="alcor-southbound/alcor:$version"
)
if [ "${1:-}" = "--list" ]; then
  for t in nats kafka redis alcor; do echo "${images[$t]}"; done
  exit 0
fi

command -v docker >/dev/null || { say "no docker client: apt-get install docker.io"; exit 1; }
docker info >/dev/null 2>&1 || {
  say "no Docker engine answers: start one (dockerd &, docs/deploy.md) or set DOCKER_HOST"; exit 1; }

./scripts/setup.sh
. ./scripts/node-path.sh

if ! docker image inspect "$base" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || {
    say "installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  # The machine's own Debian mirror (its apt sources).
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)
  [ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [ -n "$mirror" ] || { say "no Debian mirror in the apt sources"; exit 1; }
  root=$(mktemp -d /tmp/alcor-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  say "making the base $base with debootstrap (once, about a minute)"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - "$base" >/dev/null
  rm -rf "$root"
  trap - EXIT
fi

# The build context: what the images hold, staged (the repo's own files are not
# sent as they are: dev dependencies and sources stay out).
ctx=.cache/docker/context
rm -rf "$ctx" && mkdir -p "$ctx/app"
node --import tsx -e "
  const { ensureNatsServerBinary } = await import('./infra/local/natsServer.ts');
  const { ensureKafkaJars } = await import('./infra/local/kafkaServer.ts');
  const nats = await ensureNatsServerBinary();
  const jars = await ensureKafkaJars();
  process.stdout.write(nats.path + '\n' + jars + '\n');
" > "$ctx/paths"
cp "$(sed -n 1p "$ctx/paths")" "$ctx/nats-server"
cp -r "$(sed -n 2p "$ctx/paths")" "$ctx/kafka-lib"
cp deploy/docker/kafka-start.sh "$ctx/"
node --import tsx -e "
  const { KAFKA_LOG4J2 } = await import('./infra/kafka/brokerConfig.ts');
  process.stdout.write(KAFKA_LOG4J2);
" > "$ctx/kafka-log4j2.properties"
cp "$(command -v node)" "$ctx/node"
cp -r package.json package-lock.json dist demo deploy "$ctx/app/"
mkdir -p "$ctx/app/services/cli" && cp services/cli/bin.js "$ctx/app/services/cli/"
say "production node_modules"
(cd "$ctx/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)

for t in nats kafka redis alcor; do
  say "building ${images[$t]}"
  # The classic builder (Debian's engine has no BuildKit plugin); its output only
  # when the build fails.
  if ! DOCKER_BUILDKIT=0 docker build --build-arg "BASE=$base" --target "$t" \
      -t "${images[$t]}" -f deploy/docker/Dockerfile "$ctx" >"$ctx/build-$t.log" 2>&1; then
    tail -30 "$ctx/build-$t.log" >&2; say "building ${images[$t]} failed"; exit 1
  fi
done
for t in nats kafka redis alcor; do
  docker image inspect -f "{{.RepoTags}} {{.Size}}" "${images[$t]}" | awk '{printf "%s %.0f MB\n", $1, $2/1e6}'
done
