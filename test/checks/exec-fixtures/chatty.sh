#!/bin/sh
# Prints megabytes, then the line that matters.
head -c 3000000 /dev/zero | tr '\0' 'x'
echo
echo "backend says: degraded"
exit 1
