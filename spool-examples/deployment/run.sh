#!/bin/sh
# The whole deployment with one command, against a private RabbitMQ (scripts/brokers/run.js, @msgbricks/test-support):
#   spool-examples/deployment/run.sh            (COUNT=10000 RATE=1000 WORK=/tmp/... by default; Ctrl-C stops all)
# With BROKER_STOMP_PORT (and BROKER_HOST, BROKER_USER, BROKER_PASSWORD) set, that broker is used instead.
# Needs the tree built (`npm ci` at the root does it). Everything goes to $WORK: spools, logs, handled.txt.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
COUNT=${COUNT:-10000}
RATE=${RATE:-1000}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/msgbricks-deployment-XXXXXX")}
HTTP_PORT=${HTTP_PORT:-9400}
mkdir -p "$WORK/outgoing" "$WORK/incoming" "$WORK/log"

broker_pid=
cleanup() {
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  return 0
}
trap cleanup EXIT INT TERM

. "$root/scripts/brokers/private-broker.sh"
start_private_broker rabbitmq "$WORK"

# The site's values, as supervise.conf's variables.
cat >"$WORK/site.conf" <<SITE
var_work = $WORK
var_here = $here
var_node = $(command -v node)
var_stompclt = $root/agents/stompclt/bin/stompclt.js
var_broker_host = ${BROKER_HOST:-127.0.0.1}
var_broker_port = $BROKER_STOMP_PORT
var_broker_user = ${BROKER_USER:-guest}
var_broker_password = ${BROKER_PASSWORD:-guest}
var_destination = /queue/msgbricks.deployment
var_count = $COUNT
var_rate = $RATE
var_http_port = $HTTP_PORT
SITE
# supervise.conf includes site.conf from its own directory: both go to $WORK.
cp "$here/supervise.conf" "$WORK/supervise.conf"
echo "run.sh: $COUNT messages; work directory $WORK; status: curl -s 127.0.0.1:$HTTP_PORT/healthz"
# In the background, and waited for: a shell runs its traps only between commands, so a TERM to this script is
# passed on to the supervisor (which stops the agents in reverse order), and the broker goes once it is done.
node "$root/agents/supervise/bin/msgsupervise.js" --conf "$WORK/supervise.conf" start &
sup=$!
trap 'kill -TERM "$sup" 2>/dev/null' INT TERM
status=0
wait "$sup" || status=$?
# A trapped signal interrupts `wait`: wait again for the supervisor's own exit.
if kill -0 "$sup" 2>/dev/null; then wait "$sup" || status=$?; fi
exit "$status"
