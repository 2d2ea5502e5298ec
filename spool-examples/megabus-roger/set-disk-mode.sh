#!/bin/sh
# Run by megabusclt's roger plugin when a host's Roger state changed (on_change: key host, field state), with
# msghandle's conventions: the message's header in MSG_HEADER_*, the body on stdin; exit 0 done, 75 retry later,
# anything else a failed attempt. A real one would call the disk server's admin tool; this one writes the mode to
# $MODES/<host> and appends "<host> <state> <mode>" to $MODES/switches.log.
set -eu
host=${MSG_HEADER_HOST:?no host header}
state=${MSG_HEADER_STATE:?no state header}
case "$host" in
  */* | .* | '') echo "set-disk-mode: refusing host name '$host'" >&2; exit 1 ;;
esac
case "$state" in
  production) mode=read-write ;;
  draining | intervention | standby | disabled) mode=read-only ;;
  *) echo "set-disk-mode: unknown Roger state '$state' for $host" >&2; exit 1 ;;
esac
mkdir -p "$MODES"
# Written whole then renamed: the mode file is the old one or the new one, never half of one.
printf '%s\n' "$mode" >"$MODES/$host.tmp"
mv "$MODES/$host.tmp" "$MODES/$host"
printf '%s %s %s\n' "$host" "$state" "$mode" >>"$MODES/switches.log"
