# Sourced by the examples' run.sh (POSIX sh): `start_private_broker rabbitmq|activemq DIR` starts a private broker
# with scripts/brokers/run.js, waits for it, and reads its ports and credentials (BROKER_HOST, BROKER_STOMP_PORT,
# BROKER_USER, BROKER_PASSWORD...) from DIR/broker.env; `broker_pid` is then the broker's, for the caller's cleanup.
# With BROKER_STOMP_PORT already set, that broker is used: nothing starts and broker_pid stays empty. Needs `root`,
# the repository's directory.
start_private_broker() {
  broker_pid=
  [ -z "${BROKER_STOMP_PORT:-}" ] || return 0
  echo "run.sh: starting a private $1..."
  node "$root/scripts/brokers/run.js" "$1" --write-env "$2/broker.env" >"$2/broker.json" &
  broker_pid=$!
  while [ ! -f "$2/broker.env" ]; do
    kill -0 "$broker_pid" 2>/dev/null || { echo "run.sh: the broker did not start (see above)" >&2; exit 1; }
    sleep 0.5
  done
  . "$2/broker.env"
}
