#!/bin/sh
# Prints its arguments after the first, one a line, then exits with the first.
code=$1
shift
for line in "$@"; do echo "$line"; done
exit "$code"
