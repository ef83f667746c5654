#!/bin/sh
# ipvs-warden, run by Debian's node (its dependency), whatever else is on PATH.
exec /usr/bin/node /usr/lib/ipvs-warden/dist/src/main.js "$@"
