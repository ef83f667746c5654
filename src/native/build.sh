#!/usr/bin/env bash
# Builds the probes in C (src/native/probe.c) into dist/src/native/probe.node, beside the
# JavaScript that loads it (src/health/native.ts). An N-API addon of one file needs only Node's
# headers and a C compiler, so it is built with cc directly: node-gyp would fetch the headers
# from nodejs.org, which a director's build host may not reach. Without a compiler or the
# headers nothing is built, and TCP and HTTP checks run on Node's TCP handle as before (the
# daemon's start line says which: native_probes).
set -u
cd "$(dirname "$0")/../.."
out=dist/src/native/probe.node
src=src/native/probe.c
[ -f "$out" ] && [ "$out" -nt "$src" ] && [ "$out" -nt "$0" ] && exit 0
rm -f "$out"
include=$(node -p 'require("node:path").resolve(process.execPath, "../../include/node")')
why=
if [ ! -f "$include/node_api.h" ]; then
  why="no Node headers in $include"
elif ! command -v cc >/dev/null; then
  why="no C compiler (cc)"
fi
if [ -n "$why" ]; then
  echo "build: the probes in C are not built ($why); TCP and HTTP checks use Node's TCP handle" >&2
  exit 0
fi
mkdir -p "$(dirname "$out")"
if ! cc -O2 -Wall -Wextra -Werror -std=gnu11 -shared -fPIC -fvisibility=hidden -I"$include" \
  -o "$out.tmp" "$src"; then
  rm -f "$out.tmp"
  echo "build: $src did not compile; TCP and HTTP checks use Node's TCP handle" >&2
  exit 0
fi
mv "$out.tmp" "$out"
