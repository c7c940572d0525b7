#!/bin/bash
# A job once the Kafka clusters are healthy: the roles' ACLs on each (as its admin).
set -euo pipefail
for id in ${KAFKA_CLUSTERS//,/ }; do
  up=${id^^}
  env "KAFKA_${up}_SASL_USERNAME=admin" \
    "KAFKA_${up}_SASL_PASSWORD_FILE=/secrets/operator/kafka-$id/admin.password" \
    alcor kafka-acls --cluster "$id" --brokers "kafka-$id:9092"
done
