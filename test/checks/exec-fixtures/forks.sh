#!/bin/sh
# Leaves a child behind (its pid in $1), then hangs.
sleep 30 &
echo $! > "$1"
sleep 30
