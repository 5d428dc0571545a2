#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# devout.cu against the fake runtime: its expected output is HEAD (the
# small kernels and the host's lines between them), then the 30000 lines of
# the last kernel and the host's last line, made here rather than kept in
# the tree.  The rest is run_async.sh's.
#   run_devout.sh NAME PROGRAM SHIM_DIR SERVER_BIN FAKE_DIR WORKDIR HEAD
set -u
[ $# -eq 7 ] || { echo "usage: run_devout.sh NAME PROGRAM SHIM_DIR SERVER_BIN FAKE_DIR WORKDIR HEAD" >&2; exit 1; }
name=$1 head=$7
expected=$(mktemp "${TMPDIR:-/tmp}/vgpu-devout.XXXXXX") || exit 1
trap 'rm -f "$expected"' EXIT
{
    cat "$head"
    awk 'BEGIN { for (i = 0; i < 30000; i++) printf "kernel 4: line %d\n", i }'
    echo "host: done"
} >"$expected"
"$(dirname "$0")/../async/run_async.sh" "$1" "$2" "$3" "$4" "$5" "$6" "$expected" 1 \
    'fetch device output -> done'
rc=$?
[ "$rc" = 0 ] || echo "$name: see $6/shim.log and $6/server.log" >&2
exit $rc
