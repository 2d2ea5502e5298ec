#!/bin/sh
# The Roger state listener with one command, against a private RabbitMQ (scripts/brokers/run.js):
#   spool-examples/megabus-roger/run.sh        (WORK=/tmp/... by default; KEEP=1 keeps megabusclt running: Ctrl-C stops)
# With BROKER_STOMP_PORT (and BROKER_HOST, BROKER_USER, BROKER_PASSWORD) set, that broker is used instead.
# It starts megabusclt with megabus.yaml (the roger plugin), publishes Roger state changes with `megabusclt publish`,
# and waits for the disk servers' modes to be switched: three switches for four messages (one is no change).
# Needs the tree built (`npm ci` at the root does it). Everything goes to $WORK: megabus.yaml, state, modes, log.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/msgbricks-roger-XXXXXX")}
METRICS_PORT=${METRICS_PORT:-9466}
megabusclt="$root/agents/megabusclt/bin/megabusclt.js"
mkdir -p "$WORK"

broker_pid=
clt_pid=
cleanup() {
  [ -n "$clt_pid" ] && kill "$clt_pid" 2>/dev/null && wait "$clt_pid" 2>/dev/null
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${BROKER_STOMP_PORT:-}" ]; then
  echo "run.sh: starting a private RabbitMQ..."
  node "$root/scripts/brokers/run.js" rabbitmq --write-env "$WORK/broker.env" >"$WORK/broker.json" &
  broker_pid=$!
  while [ ! -f "$WORK/broker.env" ]; do
    kill -0 "$broker_pid" 2>/dev/null || { echo "run.sh: the broker did not start (see above)" >&2; exit 1; }
    sleep 0.5
  done
  . "$WORK/broker.env"
fi

# The site's values into the example's configuration (a Puppet template would do this on a real host).
sed -e "s|@BROKER@|${BROKER_HOST:-127.0.0.1}:$BROKER_STOMP_PORT|" \
  -e "s|@USER@|${BROKER_USER:-guest}|" -e "s|@PASSWORD@|${BROKER_PASSWORD:-guest}|" \
  -e "s|@METRICS_PORT@|$METRICS_PORT|" -e "s|@HERE@|$here|" \
  "$here/megabus.yaml" >"$WORK/megabus.yaml"
export MODES="$WORK/modes"

node "$megabusclt" --config "$WORK/megabus.yaml" -d --stats-interval 10 2>"$WORK/megabusclt.log" &
clt_pid=$!
echo "run.sh: megabusclt running (pid $clt_pid); log $WORK/megabusclt.log; health: curl -s 127.0.0.1:$METRICS_PORT/healthz"
tries=0
until grep -q 'info: connected plugin=roger' "$WORK/megabusclt.log"; do
  kill -0 "$clt_pid" 2>/dev/null || { cat "$WORK/megabusclt.log" >&2; echo "run.sh: megabusclt stopped" >&2; exit 1; }
  tries=$((tries + 1))
  [ "$tries" -lt 120 ] || { echo "run.sh: megabusclt did not connect" >&2; exit 1; }
  sleep 0.5
done

# Roger says: disk42 drains, says it again (no change: nothing runs), disk43 is in production, disk42 is back.
publish() {
  node "$megabusclt" publish --config "$WORK/megabus.yaml" --header "host=$1" --header "state=$2" \
    "{\"host\":\"$1\",\"state\":\"$2\"}"
}
publish disk42 draining
publish disk42 draining
publish disk43 production
publish disk42 production

tries=0
until [ "$(wc -l <"$MODES/switches.log" 2>/dev/null || echo 0)" -ge 3 ] &&
  grep -q 'outcome=unchanged' "$WORK/megabusclt.log" 2>/dev/null; do
  tries=$((tries + 1))
  [ "$tries" -lt 120 ] || { echo "run.sh: the modes were not switched (see $WORK/megabusclt.log)" >&2; exit 1; }
  sleep 0.5
done
echo "run.sh: switches ($MODES/switches.log):"
cat "$MODES/switches.log"
echo "run.sh: last Roger states acted on ($WORK/state/roger/on_change.json):"
cat "$WORK/state/roger/on_change.json"

if [ "${KEEP:-0}" = 1 ]; then
  echo "run.sh: still listening; publish more with: node $megabusclt publish --config $WORK/megabus.yaml --header host=disk44 --header state=draining '{}'"
  wait "$clt_pid" || true
fi
