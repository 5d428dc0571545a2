#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Differential test: run one example natively and through vgpu (the shim
# against a fresh vgpu-server on a unix socket) and require the same stdout,
# byte for byte, and the same exit status. Without a GPU both runs fail the
# same way (not so with --driver: see tests/e2e/CMakeLists.txt); with one,
# both succeed the same way.
#
#   run_diff.sh [--preload | --driver] [--require-gpu] NAME EXAMPLE_BIN SHIM_DIR SERVER_BIN WORKDIR
#
#   --preload      load the shim with LD_PRELOAD=SHIM_DIR/libcudart.so.13
#                  instead of LD_LIBRARY_PATH=SHIM_DIR
#   --driver       the program talks to the driver API: a driver-API program
#                  (libcuda.so.1 needed) or one linked with the static runtime
#                  (which dlopens libcuda.so.1). The vgpu run gets vgpu's
#                  SHIM_DIR/libcuda.so.1, still through LD_LIBRARY_PATH=SHIM_DIR,
#                  and the link checks below are made for libcuda.so.1
#   --require-gpu  exit 77 (skipped) when this machine has no NVIDIA GPU, and
#                  require the native run to succeed (status 0)
#
# Environment: VGPU_E2E_TIMEOUT (seconds per run, default 120),
# VGPU_E2E_LOG_LEVEL (passed to the server as --log-level when set).
# Everything the test writes goes under WORKDIR (native.out/err,
# vgpu.out/err, server.log, cache/). Exit: 0 same, 1 different or broken
# setup, 77 skipped.
set -u
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"

preload=0
driver=0
require_gpu=0
while [ $# -gt 0 ]; do
    case "$1" in
    --preload) preload=1; shift ;;
    --driver) driver=1; shift ;;
    --require-gpu) require_gpu=1; shift ;;
    --) shift; break ;;
    -*) echo "run_diff.sh: unknown option $1" >&2; exit 1 ;;
    *) break ;;
    esac
done
if [ $# -ne 5 ] || [ "$preload$driver" = 11 ]; then
    echo "usage: run_diff.sh [--preload | --driver] [--require-gpu] NAME EXAMPLE_BIN SHIM_DIR SERVER_BIN WORKDIR" >&2
    exit 1
fi
name=$1 example=$2 shim_dir=$3 server=$4 work=$5
run_timeout=${VGPU_E2E_TIMEOUT:-120}
# the library of vgpu's that the vgpu run must get in place of the real one
lib=libcudart.so.13
[ "$driver" = 1 ] && lib=libcuda.so.1
shim=$shim_dir/$lib

fail() {
    echo "$name: $*" >&2
    exit 1
}

if [ "$require_gpu" = 1 ]; then
    if ! nvidia-smi -L >/dev/null 2>&1 && [ ! -e /dev/nvidia0 ]; then
        echo "$name: no NVIDIA GPU on this machine, skipped"
        exit 77
    fi
fi

[ -x "$example" ] || fail "example $example is missing; build it first"
[ -x "$server" ] || fail "server $server is missing; build it first"
[ -f "$shim" ] || fail "shim $shim is missing; build it first"
mkdir -p "$work" || fail "cannot create $work"
work=$(cd "$work" && pwd -P)
shim_real=$(cd "$shim_dir" && pwd -P)
rm -rf "$work/cache"
rm -f "$work/native.out" "$work/native.err" "$work/vgpu.out" "$work/vgpu.err" \
    "$work/server.log" "$work/vgpu.sock"

# A unix socket path must fit in sun_path (108 bytes): deep build trees get
# the socket in a private directory under /tmp instead.
sock=$work/vgpu.sock
sockdir=
if [ ${#sock} -gt 100 ]; then
    sockdir=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-e2e.XXXXXX") || fail "mktemp failed"
    sock=$sockdir/vgpu.sock
fi

server_pid=
# shellcheck disable=SC2317 # called through the trap
cleanup() {
    stop_server
    if [ -n "$sockdir" ]; then
        rm -rf "$sockdir"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# The dynamic linker must resolve $lib to the real library for the native
# run and to vgpu's for the vgpu run; anything else would compare a program
# with itself.
resolved_dir() {
    # stdin: ldd output; prints the directory $lib resolves into.
    awk -v lib="$lib" '$1 == lib && $2 == "=>" { print $3; exit }
         substr($1, length($1) - length(lib)) == "/" lib { print $1; exit }' |
        { read -r path && [ -n "$path" ] && [ -e "$path" ] && cd "$(dirname "$path")" && pwd -P; }
}
needs_lib() {
    # stdin: ldd output; true when it lists $lib, resolved or not.
    awk -v lib="$lib" '$1 == lib || substr($1, length($1) - length(lib)) == "/" lib { f = 1 }
         END { exit !f }'
}
native_ldd=$(env -u LD_PRELOAD -u LD_LIBRARY_PATH ldd "$example")
if [ "$driver" = 1 ] && ! printf '%s\n' "$native_ldd" | needs_lib; then
    # A program with the static runtime: libcuda.so.1 is not a dependency
    # but dlopen'ed by the runtime, and dlopen searches LD_LIBRARY_PATH
    # before the cache (our examples carry RUNPATH, never RPATH), so the
    # vgpu run gets SHIM_DIR's; ldd has nothing to check.
    :
else
    native_dir=$(printf '%s\n' "$native_ldd" | resolved_dir)
    [ -n "$native_dir" ] || fail "natively, $lib of $example does not resolve (ldd)"
    [ "$native_dir" != "$shim_real" ] || fail "natively, $lib already resolves into the shim dir $shim_real"
    if [ "$preload" = 1 ]; then
        ldd_out=$(env -u LD_LIBRARY_PATH LD_PRELOAD="$shim" ldd "$example")
    else
        ldd_out=$(env -u LD_PRELOAD LD_LIBRARY_PATH="$shim_dir" ldd "$example")
    fi
    vgpu_dir=$(printf '%s\n' "$ldd_out" | resolved_dir)
    if [ "$vgpu_dir" != "$shim_real" ]; then
        printf '%s\n' "$ldd_out" >&2
        fail "through vgpu, $lib resolves into '$vgpu_dir', not the shim dir $shim_real"
    fi
    loaded=$(printf '%s\n' "$ldd_out" |
        awk -v lib="$lib" '$1 == lib || substr($1, length($1) - length(lib)) == "/" lib { n++ }
             END { print n + 0 }')
    if [ "$loaded" -ne 1 ]; then
        printf '%s\n' "$ldd_out" >&2
        fail "through vgpu, $lib would be loaded $loaded times"
    fi
fi

set -- --listen "unix:$sock" --cache-dir "$work/cache"
[ -n "${VGPU_E2E_LOG_LEVEL:-}" ] && set -- "$@" --log-level "$VGPU_E2E_LOG_LEVEL"
mkdir -p "$work/cache"
start_server "" "$@"

env -u LD_PRELOAD -u LD_LIBRARY_PATH -u VGPU_SERVER \
    timeout "$run_timeout" "$example" >"$work/native.out" 2>"$work/native.err"
native_rc=$?
if [ "$preload" = 1 ]; then
    env -u LD_LIBRARY_PATH VGPU_SERVER="unix:$sock" LD_PRELOAD="$shim" \
        timeout "$run_timeout" "$example" >"$work/vgpu.out" 2>"$work/vgpu.err"
else
    env -u LD_PRELOAD VGPU_SERVER="unix:$sock" LD_LIBRARY_PATH="$shim_dir" \
        timeout "$run_timeout" "$example" >"$work/vgpu.out" 2>"$work/vgpu.err"
fi
vgpu_rc=$?

problems=
[ "$native_rc" = "$vgpu_rc" ] || problems="$problems exit status differs (native $native_rc, vgpu $vgpu_rc);"
cmp -s "$work/native.out" "$work/vgpu.out" || problems="$problems stdout differs;"
[ "$native_rc" != 124 ] || problems="$problems native run timed out after ${run_timeout}s;"
[ "$vgpu_rc" != 124 ] || problems="$problems vgpu run timed out after ${run_timeout}s;"
if [ "$require_gpu" = 1 ] && [ "$native_rc" != 0 ]; then
    problems="$problems native run failed on a GPU machine (status $native_rc);"
fi

if [ -z "$problems" ]; then
    mode=LD_LIBRARY_PATH
    [ "$preload" = 1 ] && mode=LD_PRELOAD
    [ "$driver" = 1 ] && mode="LD_LIBRARY_PATH, $lib"
    echo "$name: native and vgpu ($mode) agree, exit status $native_rc"
    cat "$work/native.out"
    exit 0
fi

show() {
    echo "----- $1 -----"
    if [ -s "$2" ]; then cat "$2"; else echo "(empty)"; fi
}
{
    echo "$name: MISMATCH:$problems"
    show "native stdout (exit $native_rc)" "$work/native.out"
    show "vgpu stdout (exit $vgpu_rc)" "$work/vgpu.out"
    echo "----- diff -u native vgpu -----"
    diff -u "$work/native.out" "$work/vgpu.out"
    show "native stderr" "$work/native.err"
    show "vgpu stderr" "$work/vgpu.err"
    echo "----- server log (last 50 lines) -----"
    tail -n 50 "$work/server.log"
} >&2
exit 1
