#!/usr/bin/env bash
# Instructions per SOCKS5 handshake (encode + parse) under callgrind, and the
# heap allocations of the whole run (valgrind's memcheck summary).
# Usage: bench/core_cost.sh BUILD_DIR
set -euo pipefail
bin=${1:-build}/bench/core_cost
instructions() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" 2>&1 |
    sed -nE 's/.*Collected : ([0-9]+).*/\1/p'
}
small=$(instructions 1000)
large=$(instructions 11000)
per=$(((large - small) / 10000))
allocs=$(valgrind "$bin" 10000 2>&1 | sed -nE 's/.*total heap usage: ([0-9,]+) allocs.*/\1/p' | tr -d ,)
baseline=$(valgrind "$bin" 0 2>&1 | sed -nE 's/.*total heap usage: ([0-9,]+) allocs.*/\1/p' | tr -d ,)
echo "core: ${per} instructions per SOCKS5 handshake (goal <= 2000); heap allocations per handshake: $(((allocs - baseline) / 10000)) ($((allocs - baseline)) extra over 10000 handshakes)"
