#!/bin/sh
# A message handler for msghandle --exec: the body on stdin, the header in MSG_HEADER_* (and the file $MSG_JSON).
# Exit 0: done (the message is removed). Exit 75: not now (retried later, not counted as a failure). Anything else:
# a failed attempt (retried with backoff, then dead-lettered after --max-attempts).
#
#   msghandle --queue 'path=/tmp/spool' --exec 'spool-examples/msghandle/handle.sh /tmp/out' \
#             --max-attempts 3 --dead-letter-queue 'path=/tmp/dead' --drain
set -eu
out=${1:?usage: handle.sh OUTPUT_DIRECTORY}
case "${MSG_HEADER_ACTION:-store}" in
  later) exit 75 ;;
  fail) echo "asked to fail" >&2; exit 1 ;;
esac
mkdir -p "$out"
# One file per message, named after its element (a/b -> a-b), written then renamed: never half a file.
file="$out/$(echo "$MSG_NAME" | tr / -)"
cat > "$file.tmp"
mv "$file.tmp" "$file"
echo "stored $MSG_NAME (attempt $MSG_ATTEMPT, type ${MSG_HEADER_CONTENT_TYPE:-none}) in $file"
