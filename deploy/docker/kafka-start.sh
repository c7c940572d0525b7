#!/bin/bash
# Starts a single-node KRaft broker with the given server.properties (as `alcor
# kafka-config` writes it), formatting its storage first when log.dirs holds none
# yet (the first start of a new volume). KAFKA_HOME holds lib/ (the broker's jars);
# KAFKA_LOG4J2 the logging settings (default $KAFKA_HOME/log4j2.properties).
set -euo pipefail
props=${1:-/secrets/kafka/server.properties}
home=${KAFKA_HOME:-/opt/kafka}
if [ ! -r "$props" ]; then
  echo "kafka-start: $props is not readable (write it with: alcor kafka-config)" >&2
  exit 2
fi
data=$(sed -n 's/^log\.dirs=//p' "$props")
read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
jvm=("${heap[@]}" "-Dlog4j2.configurationFile=${KAFKA_LOG4J2:-$home/log4j2.properties}" -cp "$home/lib/*")
if [ ! -f "$data/meta.properties" ]; then
  mkdir -p "$data"
  id=$(java "${jvm[@]}" kafka.tools.StorageTool random-uuid)
  java "${jvm[@]}" kafka.tools.StorageTool format --cluster-id="$id" -c "$props"
fi
exec java "${jvm[@]}" kafka.Kafka "$props"
