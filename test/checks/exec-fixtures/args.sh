#!/bin/sh
# Prints what the check gave it, then exits with $1 (default 0).
echo "args=$* env=$WARDEN_ADDRESS:$WARDEN_PORT/$WARDEN_FAMILY extra=$EXTRA"
exit "${1:-0}"
