#!/bin/sh
# The site's preparation before a power cut (here: say what a real script would do). megabusclt runs it with the
# announcement's body on stdin and its header in MSG_HEADER_* (msghandle's conventions); exit 0 done, 75 retry later.
set -eu
echo "$(date -u +%FT%TZ) prepare: event ${MSG_HEADER_EVENT_ID:-?} room ${MSG_HEADER_ROOM:-?}: stopping batch jobs, syncing disks"
