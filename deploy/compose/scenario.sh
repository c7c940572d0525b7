#!/bin/bash
# The last job: the scenario's intents through the sync API (as a client), waiting
# until every affected host applied them, then the convergence oracle (as the
# service user): exit 0 and `RESULT: OK` only when every intent was accepted and
# programmed and every host holds exactly what EVENTS says.
set -uo pipefail
NATS_NKEY_SEED_FILE=/secrets/operator/client.nk \
  alcor apply -f /work/intents.json --wait programmed --wait-ms 120000
applied=$?
NATS_NKEY_SEED_FILE=/secrets/operator/service.nk alcor check
checked=$?
if [ $applied -eq 0 ] && [ $checked -eq 0 ]; then echo 'RESULT: OK'; exit 0; fi
echo "RESULT: NOT OK (apply exit $applied, check exit $checked)"
exit 1
