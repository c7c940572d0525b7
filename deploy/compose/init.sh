#!/bin/bash
# The compose deployment's first job: the scenario's files and every server's
# settings and users, made once in the `secrets` volume (seeds and passwords are
# kept when it runs again), then each role's share copied into that role's own
# volume, so a process can read only its own credentials.
set -euo pipefail
cd /opt/alcor
scenario=${ALCOR_SCENARIO:-deploy/compose/scenario.yaml}
clusters=${KAFKA_CLUSTERS:-a,b}
m=/secrets            # everything (this job only)
o=/out                # the roles' volumes: /out/<role>

node dist/services/demo/main.js --scenario "$scenario" --write-files /out/work
alcor nats-config --out $m/nats --hosts /out/work/topology.json --store-dir /var/lib/nats/jetstream >/dev/null
alcor redis-config --out $m/redis >/dev/null
for id in ${clusters//,/ }; do
  alcor kafka-config --cluster "$id" --out "$m/kafka-$id" --advertise "kafka-$id:9092" \
    --data-dir /var/lib/kafka/data >/dev/null
done

copy() { # copy <file> <dir>: 0600, in a role's volume
  mkdir -p "$2" && cp "$1" "$2/" && chmod 600 "$2/$(basename "$1")"
}
# Servers: their settings only (public keys, password hashes are not used: PLAIN
# and Redis need the passwords themselves).
rm -rf $o/nats/* && mkdir -p $o/nats/credentials
cp $m/nats/nats.conf $o/nats/ && cp $m/nats/credentials/*-users.conf $o/nats/credentials/
copy $m/redis/users.acl $o/redis
for id in ${clusters//,/ }; do copy "$m/kafka-$id/server.properties" "$o/kafka-$id"; done
# Services: their role's NATS seed, the Redis password, their role's Kafka passwords.
for role in controller southbound; do copy "$m/nats/credentials/$role.nk" "$o/$role"; done
for role in controller southbound; do copy $m/redis/alcor.password "$o/$role"; done
for id in ${clusters//,/ }; do
  mkdir -p "$o/southbound/kafka-$id" "$o/nca/kafka-$id" "$o/operator/kafka-$id"
  copy "$m/kafka-$id/southbound.password" "$o/southbound/kafka-$id"
  copy "$m/kafka-$id/nca.password" "$o/nca/kafka-$id"
  copy "$m/kafka-$id/admin.password" "$o/operator/kafka-$id"
done
# The NCA fleet: one seed per host (each agent connects as its host's user).
rm -rf $o/nca/hosts && cp -r $m/nats/credentials/hosts $o/nca/hosts
# The operator's jobs (setup, scenario): the service and client seeds.
for role in service client; do copy "$m/nats/credentials/$role.nk" $o/operator; done
echo "init: settings and users ready for NATS, Redis, Kafka ${clusters}; scenario in /work"
