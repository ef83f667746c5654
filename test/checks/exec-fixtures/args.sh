#!/bin/sh
# Writes what the check gave it to the file $1: one argument a line, then the environment.
out=$1
shift
for a in "$@"; do echo "arg=$a"; done > "$out"
env | sort >> "$out"
echo "wrote $# arguments"
