#!/bin/sh
# Records its start and end times (ms) in $1, taking $2 seconds.
echo "start $(date +%s%3N)" >> "$1"
sleep "$2"
echo "end $(date +%s%3N)" >> "$1"
