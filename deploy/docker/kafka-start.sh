#!/bin/bash
# Starts the broker with the given server.properties; formats its storage first
# when log.dirs holds none yet (the first start of a new volume).
set -euo pipefail
props=${1:-/secrets/kafka/server.properties}
if [ ! -r "$props" ]; then
  echo "kafka-start: $props is not readable (write it with: alcor kafka-config)" >&2
  exit 2
fi
data=$(sed -n 's/^log\.dirs=//p' "$props")
jvm=(${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties -cp '/opt/kafka/lib/*')
if [ ! -f "$data/meta.properties" ]; then
  mkdir -p "$data"
  id=$(java "${jvm[@]}" kafka.tools.StorageTool random-uuid)
  java "${jvm[@]}" kafka.tools.StorageTool format --cluster-id="$id" -c "$props"
fi
exec java "${jvm[@]}" kafka.Kafka "$props"
