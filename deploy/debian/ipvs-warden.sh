#!/bin/sh
# ipvs-warden, run by Debian's node (its dependency), whatever else is on PATH. The flag is one V8
# reads only as node starts (src/v8-flags.ts, NODE_START_FLAGS): a smaller young generation.
exec /usr/bin/node --max-semi-space-size=4 /usr/lib/ipvs-warden/dist/src/main.js "$@"
