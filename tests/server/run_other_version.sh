#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The shim against a server of another protocol version (newer_server): the
# program's CUDA calls all fail, and the shim prints the sentence naming
# both versions exactly once, however many calls the program makes.
#   run_other_version.sh NEWER_SERVER PROGRAM SHIM_DIR WORKDIR
# Exit: 0 pass, 1 fail.
set -u
if [ $# -ne 4 ]; then
    echo "usage: run_other_version.sh NEWER_SERVER PROGRAM SHIM_DIR WORKDIR" >&2
    exit 1
fi
server=$1 program=$2 shim_dir=$3 work=$4
fail() {
    echo "other_version: $*" >&2
    [ -f "$work/program.err" ] && sed 's/^/  | /' "$work/program.err" >&2
    exit 1
}
rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
sock=$(mktemp -u "${TMPDIR:-/tmp}/vgpu-newer.XXXXXX")
"$server" "$sock" &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; rm -f "$sock"' EXIT
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
done
[ -S "$sock" ] || fail "newer_server did not start"
VGPU_SERVER="unix:$sock" LD_LIBRARY_PATH="$shim_dir" "$program" >"$work/program.out" 2>"$work/program.err"
rc=$?
[ $rc -ne 0 ] || fail "the program succeeded against a server of another version"
pattern='guest speaks protocol [0-9]*, server speaks [0-9]*: rebuild the shim and server from the same vgpu release'
n=$(grep -c "$pattern" "$work/program.err")
[ "$n" -eq 1 ] || fail "the shim named both versions $n times, not once"
sentence=$(grep -o "$pattern" "$work/program.err")
guest=$(echo "$sentence" | sed 's/guest speaks protocol \([0-9]*\),.*/\1/')
newer=$(echo "$sentence" | sed 's/.*server speaks \([0-9]*\):.*/\1/')
[ "$newer" -eq $((guest + 1)) ] || fail "the versions in '$sentence' are not this shim's and the next"
echo "other_version: the program failed (exit $rc) and the shim said once: $sentence"
exit 0
