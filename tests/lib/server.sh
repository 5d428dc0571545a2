# SPDX-License-Identifier: Apache-2.0
# Shell helpers shared by the test runners (sourced, POSIX sh).
# shellcheck shell=sh
# The caller's $server, $work and $sock are set before start_server.
# shellcheck disable=SC2154

# Stops the vgpu-server whose pid is in $server_pid: SIGTERM, up to 5 s for a
# clean exit, then SIGKILL.  $name prefixes the complaint.  Clears server_pid.
stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null
    i=0
    while kill -0 "$server_pid" 2>/dev/null && [ "$i" -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        echo "${name:-vgpu-server}: server did not exit on SIGTERM, killing it" >&2
        kill -KILL "$server_pid" 2>/dev/null
    fi
    wait "$server_pid" 2>/dev/null
    server_pid=
}

server_fail() {
    echo "${name:-vgpu-server}: $*" >&2
    exit 1
}

# start_server FAKE_DIR SERVER_ARGS...: starts $server in the background
# (stderr to $work/server.log), on the fake runtime (tests/fakecuda) when
# FAKE_DIR is not empty (and on the libraries in $extra_libs, a directory
# searched after it, when set: the fake NVML), and waits up to 10 s for
# $sock.  Sets $server_pid.  $server_wrap, when set, is a command the server
# runs under (setsid: a process group of its own).
# On failure it says why (prefixed with $name) and exits 1.
start_server() {
    fake=$1
    shift
    if [ -n "$fake" ]; then
        # the server must load the fake runtime, not a real one found first
        got=$(env LD_LIBRARY_PATH="$fake" ldd "$server" |
            awk '$1 == "libcudart.so.13" { print $3; exit }')
        if [ -z "$got" ] || [ "$(cd "$(dirname "$got")" && pwd -P)" != "$(cd "$fake" && pwd -P)" ]; then
            server_fail "with LD_LIBRARY_PATH=$fake the server loads libcudart.so.13 from '$got'"
        fi
        # shellcheck disable=SC2086 # $server_wrap is a command and its words
        LD_LIBRARY_PATH=$fake${extra_libs:+:$extra_libs} ${server_wrap:-} "$server" "$@" \
            </dev/null >/dev/null 2>"$work/server.log" &
    else
        # shellcheck disable=SC2086
        ${server_wrap:-} "$server" "$@" </dev/null >/dev/null 2>"$work/server.log" &
    fi
    server_pid=$!
    i=0
    while [ ! -S "$sock" ]; do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid"
            rc=$?
            server_pid=
            tail -n 50 "$work/server.log" >&2
            server_fail "server exited with status $rc before listening on $sock"
        fi
        [ "$i" -lt 100 ] || { tail -n 50 "$work/server.log" >&2; server_fail "no socket $sock after 10 s"; }
        sleep 0.1
        i=$((i + 1))
    done
}

# fresh_work NAME: empties $work and sets $sock to NAME in it, or in a
# private directory under /tmp when that path would not fit a unix socket's
# 108 bytes (the server adds ".admin"); $sockdir names that directory (or
# is empty).  An EXIT trap stops the server and removes it.
fresh_work() {
    rm -rf "$work"
    mkdir -p "$work" || server_fail "cannot create $work"
    sock=$work/$1
    sockdir=
    if [ ${#sock} -gt 90 ]; then
        sockdir=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-test.XXXXXX") || server_fail "mktemp failed"
        sock=$sockdir/$1
    fi
    trap 'stop_server; [ -z "$sockdir" ] || rm -rf "$sockdir"' EXIT
}
