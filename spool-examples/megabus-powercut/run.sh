#!/bin/sh
# The power-cut schedule with one command, against a private RabbitMQ (scripts/brokers/run.js):
#   spool-examples/megabus-powercut/run.sh          (TIME_SCALE=0.1: the 6-minute schedule in 36 s; Ctrl-C stops)
# It starts megabusclt on megabus.yaml, announces a power cut (megabusclt publish) and, with CANCEL_AFTER=SECONDS,
# the all-clear after that long. With BROKER_STOMP_PORT (and BROKER_HOST, BROKER_USER, BROKER_PASSWORD) set, that
# broker is used. Everything goes to $WORK: megabus.yaml, state/ (spool, schedule records), prepare.log, outbox.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/msgbricks-powercut-XXXXXX")}
TIME_SCALE=${TIME_SCALE:-0.1}
EVENT_ID=${EVENT_ID:-pc-$(date -u +%Y%m%d%H%M%S)}
megabusclt="node $root/agents/megabusclt/dist/main.js"
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

. "$root/scripts/brokers/private-broker.sh"
start_private_broker rabbitmq "$WORK"

sed -e "s|@BROKER_PORT@|$BROKER_STOMP_PORT|" -e "s|@BROKER_USER@|${BROKER_USER:-guest}|" \
  -e "s|@BROKER_PASSWORD@|${BROKER_PASSWORD:-guest}|" -e "s|@WORK@|$WORK|g" -e "s|@HERE@|$here|g" \
  -e "s|@TIME_SCALE@|$TIME_SCALE|" "$here/megabus.yaml" >"$WORK/megabus.yaml"
$megabusclt check --config "$WORK/megabus.yaml" >/dev/null

echo "run.sh: megabusclt running; work directory $WORK"
$megabusclt --config "$WORK/megabus.yaml" &
clt_pid=$!
echo "run.sh: announcing power cut $EVENT_ID (event time: now)"
$megabusclt publish --config "$WORK/megabus.yaml" --header destination=/queue/msgbricks.powercut \
  --header event_id="$EVENT_ID" --header event_time="$(date +%s)" --header room=513 --header state=announced \
  '{"room":"513","what":"power cut"}'
if [ -n "${CANCEL_AFTER:-}" ]; then
  sleep "$CANCEL_AFTER"
  echo "run.sh: all clear for $EVENT_ID"
  $megabusclt publish --config "$WORK/megabus.yaml" --header destination=/queue/msgbricks.powercut \
    --header event_id="$EVENT_ID" --header state=resolved '{"room":"513","what":"all clear"}'
fi
wait "$clt_pid"
