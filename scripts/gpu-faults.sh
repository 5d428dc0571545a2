# SPDX-License-Identifier: Apache-2.0
#
# Sourced by the GPU host's fault scripts (gpu-soak.sh,
# tests/gpu/run_session_died.sh) after gpu-host.sh, with $work set: the
# bundle's vgpu-server started in a process group of its own and stopped,
# on the real runtime or, with VGPU_FAKECUDA=DIR (the build's
# tests/fakecuda), on the fake one, so that the scripts can be tried
# without a GPU; a client's session found by its process title; the GPU's
# used memory.  Everything here is bounded in time.
# shellcheck shell=bash
# shellcheck disable=SC2154 # $bundle and $work come from the sourcing script

fake=${VGPU_FAKECUDA:-}
if [ -n "$fake" ]; then
    fake=$(cd "$fake" && pwd) || exit 1
fi
server_pid=

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# alive PID: the process runs (a zombie waiting for its parent does not).
alive() {
    [ -r "/proc/$1/stat" ] && ! awk '{ sub(/^.*\) /, ""); exit $1 == "Z" ? 0 : 1 }' "/proc/$1/stat" 2>/dev/null
}

# gpu_used_mib: the used memory of the machine's GPUs in MiB, summed
# (nvidia-smi); nothing on the fake runtime or without nvidia-smi.
gpu_used_mib() {
    [ -z "$fake" ] && command -v nvidia-smi >/dev/null || return 0
    timeout 8 nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null |
        awk '$1 ~ /^[0-9]+$/ { s += $1; n++ } END { if (n) print s }'
}

# gpu_settles LIMIT SECONDS: waits up to SECONDS for gpu_used_mib to be
# LIMIT or less; sets gpu_last (the last figure) and gpu_ms (how long it
# took); returns 1 when it never was.
gpu_settles() {
    local t0 end
    t0=$(now_ms) end=$(($(now_ms) + $2 * 1000))
    while :; do
        gpu_last=$(gpu_used_mib)
        # shellcheck disable=SC2034 # for the caller
        gpu_ms=$(($(now_ms) - t0))
        [ -n "$gpu_last" ] && [ "$gpu_last" -le "$1" ] && return 0
        [ "$(now_ms)" -lt "$end" ] || return 1
        sleep 0.2
    done
}

# server_env: the library path the server runs with.  On the fake, its
# directory comes first, and the server must then resolve libcudart.so.13
# into it (else the "fake" run would be a real one, or none).
server_env() {
    if [ -n "$fake" ]; then
        echo "$fake${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    else
        echo "${LD_LIBRARY_PATH:-}"
    fi
}
server_check_libs() {
    local got
    got=$(env LD_LIBRARY_PATH="$(server_env)" ldd "$bundle/bin/vgpu-server" |
        awk '$1 == "libcudart.so.13" { print $3; exit }')
    if [ -n "$fake" ] && [ "$(cd "$(dirname "$got")" 2>/dev/null && pwd -P)" != "$(cd "$fake" && pwd -P)" ]; then
        echo "with the fake at $fake, vgpu-server loads libcudart.so.13 from '$got'" >&2
        return 1
    fi
    if [ -z "$fake" ] && { [ -z "$got" ] || [ "$got" = "not" ] || [ "$(dirname "$got")" -ef "$bundle/shim" ]; }; then
        echo "vgpu-server's libcudart.so.13 resolves to '$got', not a CUDA runtime" >&2
        return 1
    fi
    return 0
}

# server_start SOCK LOG [ARG...]: vgpu-server on unix:SOCK (its cache in
# $work/cache, log level info, stderr to LOG), in a process group of its
# own (setsid: its pid is the group's id, for a kill of the whole group),
# with core dumps off as systemd's default LimitCORE=0 has them (a session
# ended by SIGSEGV and dumped, which the kernel may still do through a pipe
# in core_pattern, holds its client's call until the core is written).
# Sets server_pid; returns 1 with a message when it does not listen within
# 10 s or is not its group's leader.
server_start() {
    local sock=$1 log=$2 end
    shift 2
    rm -f "$sock" "$sock.admin"
    mkdir -p "$work/cache"
    (
        ulimit -c 0
        LD_LIBRARY_PATH=$(server_env)
        export LD_LIBRARY_PATH
        exec setsid "$bundle/bin/vgpu-server" --listen "unix:$sock" --cache-dir "$work/cache" \
            --log-level info "$@"
    ) </dev/null >/dev/null 2>"$log" &
    server_pid=$!
    end=$(($(now_ms) + 10000))
    while [ ! -S "$sock" ] || [ ! -S "$sock.admin" ]; do
        if ! alive "$server_pid" || [ "$(now_ms)" -ge "$end" ]; then
            echo "vgpu-server did not listen on $sock within 10 s: $(tail -n 5 "$log")" >&2
            kill -KILL "$server_pid" 2>/dev/null
            wait "$server_pid" 2>/dev/null       # ended or killed just now
            server_pid=
            return 1
        fi
        sleep 0.05
    done
    if [ "$(ps -o pgid= -p "$server_pid" | tr -d ' ')" != "$server_pid" ]; then
        echo "vgpu-server ($server_pid) is not its process group's leader (setsid forked: job control on?)" >&2
        return 1
    fi
    return 0
}

# server_stop: SIGTERM, up to 5 s for the server to end, then SIGKILL to
# its whole group.  Sets server_rc (its exit status; "killed" when it had
# to be) and clears server_pid.
server_stop() {
    local end
    server_rc=
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null
    end=$(($(now_ms) + 5000))
    while alive "$server_pid" && [ "$(now_ms)" -lt "$end" ]; do
        sleep 0.1
    done
    if alive "$server_pid"; then
        kill -KILL -- "-$server_pid" 2>/dev/null
        server_rc=killed
    fi
    wait "$server_pid" 2>/dev/null               # it has ended, or SIGKILL ends it
    local rc=$?
    [ -n "$server_rc" ] || server_rc=$rc
    server_pid=
}

# group_left PGID PIDS...: how many of PIDS and of the processes still in
# group PGID run (zombies aside).
group_left() {
    local g=$1 p n=0
    shift
    for p in $({ printf '%s\n' "$@"; pgrep -g "$g"; } | sort -u); do
        alive "$p" && n=$((n + 1))
    done
    echo "$n"
}

# child_of PID: PID's child (the program a `timeout` runs), waiting up to
# 5 s for it; nothing when there is none.
child_of() {
    local end c
    end=$(($(now_ms) + 5000))
    while :; do
        c=$(pgrep -P "$1" | head -n 1)
        [ -n "$c" ] && { echo "$c"; return 0; }
        alive "$1" && [ "$(now_ms)" -lt "$end" ] || return 1
        sleep 0.05
    done
}

# session_of CLIENT_PID: the session process of server_pid that serves
# CLIENT_PID, whose title ends "(PROGRAM, pid CLIENT_PID)"
# (server/proctitle.c), waiting up to 10 s for it.
session_of() {
    local end s
    end=$(($(now_ms) + 10000))
    while [ "$(now_ms)" -lt "$end" ]; do
        for s in $(pgrep -P "$server_pid"); do
            if tr '\0' ' ' <"/proc/$s/cmdline" 2>/dev/null | grep -q ", pid $1)"; then
                echo "$s"
                return 0
            fi
        done
        sleep 0.05
    done
    return 1
}
