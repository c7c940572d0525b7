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
# One CA, one certificate for every server's name (and 127.0.0.1 for the ports
# published on the host); each path below is where the server's container sees it.
names="nats,redis,localhost,127.0.0.1"
for id in ${clusters//,/ }; do names="$names,kafka-$id"; done
alcor tls-config --out $m/tls --names "$names" >/dev/null
alcor nats-config --out $m/nats --hosts /out/work/topology.json --store-dir /var/lib/nats/jetstream \
  --tls-cert /secrets/nats/server.crt --tls-key /secrets/nats/server.key >/dev/null
alcor redis-config --out $m/redis >/dev/null
for id in ${clusters//,/ }; do
  alcor kafka-config --cluster "$id" --out "$m/kafka-$id" --advertise "kafka-$id:9092" \
    --data-dir /var/lib/kafka/data \
    --tls-key-and-cert "/secrets/kafka-$id/server.pem" --tls-ca "/secrets/kafka-$id/ca.crt" >/dev/null
done

copy() { # copy <file> <dir>: 0600, in a role's volume
  mkdir -p "$2" && cp "$1" "$2/" && chmod 600 "$2/$(basename "$1")"
}
# Servers: their settings and their certificate and key only (Kafka's PLAIN and
# Redis's ACL file hold the passwords themselves).
rm -rf $o/nats/* && mkdir -p $o/nats/credentials
cp $m/nats/nats.conf $o/nats/ && cp $m/nats/credentials/*-users.conf $o/nats/credentials/
copy $m/redis/users.acl $o/redis
for id in ${clusters//,/ }; do copy "$m/kafka-$id/server.properties" "$o/kafka-$id"; done
for f in server.crt server.key; do copy "$m/tls/$f" $o/nats; copy "$m/tls/$f" $o/redis; done
for id in ${clusters//,/ }; do copy $m/tls/server.pem "$o/kafka-$id"; copy $m/tls/ca.crt "$o/kafka-$id"; done
# Everyone verifies the servers with the CA.
for role in redis controller southbound nca operator; do copy $m/tls/ca.crt "$o/$role"; done
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
