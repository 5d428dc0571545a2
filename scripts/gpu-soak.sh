#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# A soak of one vgpu-server under faults (issue 15; a GPU host's check, never
# run by CI), with a bundle made by gpu-bundle.sh, for SECONDS in all
# (default 600):
#   - first, each program of the mix runs once natively and once through
#     vgpu; its native stdout and exit status are the reference, and a
#     program that fails natively or differs through vgpu before any fault
#     is left out of the mix and named (gpu-check.sh and gpu-suite.sh are
#     the differential checks).  With VGPU_FAKECUDA=DIR (the build's
#     tests/fakecuda) the server runs on the fake runtime, which cannot run
#     the programs natively: a first run through vgpu is the reference and
#     a second must equal it;
#   - then six workers run programs of the mix at random through vgpu, the
#     clients with CUDA_VISIBLE_DEVICES= in their own environment (only the
#     server reaches the GPU), each run under a timeout; a killer sends
#     SIGKILL to a running client every 2 to 5 s; every 120 s the server's
#     whole process group is killed with SIGKILL and a server started again
#     on the same socket; the server's main process's RSS is sampled every
#     10 s.
# Each run is then one of: killed by the killer; a hang (its timeout hit);
# a match (the reference's stdout and exit status); failed in a restart
# window (from the kill to a second after the new server listens), which
# is expected when the run ended by itself and the shim said why ("...
# vgpu-server at ..."); else a mismatch.  The soak fails on a hang, a
# mismatch, a failure in a restart window without the shim's message or by
# a signal, a session process left 5 s after a restart or after the last
# client, the server dying by itself or not ending on SIGTERM within 5 s,
# and the GPU's used memory not back within VGPU_GPU_MEM_TOLERANCE_MIB
# (default 8) of what it was before the server started once it is stopped
# (checked where nvidia-smi is, and not on the fake).  One line per figure
# in OUTDIR/soak.txt, PASS or FAIL last; the logs in OUTDIR/soak-logs.tgz.
# Exit 0 on PASS only.  It ends within SECONDS + 60 s.
#   scripts/gpu-soak.sh BUNDLE OUTDIR [SECONDS]
# Environment: VGPU_FAKECUDA, VGPU_SOAK_PROGRAMS (the mix, names of the
# bundle's examples/ and tests/), VGPU_SOAK_WORKERS (6),
# VGPU_SOAK_RESTART (seconds between restarts, 120), VGPU_SOAK_RUN_TIMEOUT
# (a run's limit, 25 s).
set -u
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: gpu-soak.sh BUNDLE OUTDIR [SECONDS]" >&2
    exit 2
fi
seconds=${3:-600}
t_start=$(($(date +%s%N) / 1000000))
summary=soak.txt
# shellcheck source=gpu-host.sh
. "$(dirname "$0")/gpu-host.sh"
# shellcheck source=gpu-faults.sh
. "$(dirname "$0")/gpu-faults.sh"
mix_default="vector_add matrix_mul streams_events multi_thread kernel_args pinned_memory error_handling
    device_query vector_add_static matrix_mul_static drv_module_fatbin drv_streams_events drv_params
    vgpu_rdc drv_fill devout rt_graph arrays async_errors ring_stress pools shared_copies"
read -r -d '' -a wanted <<<"${VGPU_SOAK_PROGRAMS:-$mix_default}"
workers=${VGPU_SOAK_WORKERS:-6} restart_every=${VGPU_SOAK_RESTART:-120}
run_timeout=${VGPU_SOAK_RUN_TIMEOUT:-25} tolerance=${VGPU_GPU_MEM_TOLERANCE_MIB:-8}
deadline=$((t_start + seconds * 1000))
# no run starts after stop_ms: the last ones (the run timeout + 10 s at
# most) and the checks after them (35 s at most) fit in the minute past
# SECONDS
stop_ms=$((deadline - (run_timeout > 15 ? run_timeout - 15 : 0) * 1000))
work=$(mktemp -d /tmp/vgpu-soak.XXXXXX)
sock=$work/s.sock
logs=$work/logs
mkdir -p "$logs" "$work/ref"
worker_pids=() killer_pid=
failures=()
# shellcheck disable=SC2317 # called through the trap
cleanup() {
    local p d
    exec 2>/dev/null                             # no "Killed" for each of them
    touch "$work/stop"
    for p in "${worker_pids[@]}" $killer_pid; do kill -KILL "$p"; done
    for d in "$work"/w[0-9]*; do
        [ -f "$d/running" ] && p=$(cat "$d/running") && kill -KILL $(pgrep -P "$p") "$p"
    done
    [ -z "$server_pid" ] || kill -KILL -- "-$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if [ -n "$fake" ]; then
    say "gpu: none, the fake runtime at $fake"
else
    say "gpu: $(timeout 20 nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -n 4 | paste -sd ';')"
fi
say "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
if ! server_check_libs 2>"$logs/libs.err"; then
    say "FAIL: $(cat "$logs/libs.err")"
    exit 1
fi
mem_before=$(gpu_used_mib)

# vgpu RUN-DIR PROGRAM: runs PROGRAM through vgpu under the run timeout,
# stdout and stderr to RUN-DIR/out and err; $! is the timeout's pid.
vgpu_bg() {
    timeout -k 5 "$run_timeout" env -u LD_PRELOAD CUDA_VISIBLE_DEVICES= VGPU_SERVER="unix:$sock" \
        LD_LIBRARY_PATH="$bundle/shim" "$2" >"$1/out" 2>"$1/err" &
}
bin_of() {
    if [ -x "$bundle/examples/$1" ]; then echo "$bundle/examples/$1"
    elif [ -x "$bundle/tests/$1" ]; then echo "$bundle/tests/$1"
    fi
}

# --- the references, on the first server
instance=1
if ! server_start "$sock" "$logs/server.$instance.log" 2>"$logs/start.err"; then
    say "FAIL: $(cat "$logs/start.err")"
    exit 1
fi
mix=() left_out=()
declare -A path
prep_end=$((t_start + seconds * 250))
for p in "${wanted[@]}"; do
    b=$(bin_of "$p")
    if [ -z "$b" ]; then left_out+=("$p (not in the bundle)"); continue; fi
    if [ "$(now_ms)" -ge "$prep_end" ]; then left_out+=("$p (no time left to take its reference)"); continue; fi
    d=$work/ref/$p
    mkdir -p "$d"
    if [ -z "$fake" ]; then
        timeout -k 5 "$run_timeout" env -u LD_PRELOAD -u VGPU_SERVER "$b" >"$d/ref.out" 2>"$d/ref.err"
        rc=$?
        if [ "$rc" -ne 0 ]; then
            left_out+=("$p (native run failed, exit $rc)")
            cp "$d/ref.out" "$logs/native.$p.out"; cp "$d/ref.err" "$logs/native.$p.err"
            continue
        fi
    else
        vgpu_bg "$d" "$b"
        wait $!                                  # bounded by the timeout
        rc=$?
        mv "$d/out" "$d/ref.out" && mv "$d/err" "$d/ref.err"
        if [ "$rc" -eq 124 ] || [ "$rc" -ge 128 ]; then
            left_out+=("$p (its first run through vgpu timed out or died, exit $rc)")
            continue
        fi
    fi
    echo "$rc" >"$d/ref.rc"
    t0=$(now_ms)
    vgpu_bg "$d" "$b"
    wait $!
    rc2=$? ms=$(($(now_ms) - t0))
    if [ "$rc2" -ne "$rc" ] || ! cmp -s "$d/ref.out" "$d/out"; then
        left_out+=("$p (differs through vgpu before any fault: exit $rc2 for $rc)")
        cp "$d/out" "$logs/preflight.$p.out"; cp "$d/err" "$logs/preflight.$p.err"
        continue
    fi
    if [ "$ms" -gt $((run_timeout * 1000 / 4)) ]; then
        left_out+=("$p (took $ms ms alone, too close to the run timeout)")
        continue
    fi
    mix+=("$p")
    path[$p]=$b
done
reference=native
[ -n "$fake" ] && reference="a first run through vgpu (the fake cannot run them natively)"
say "mix: ${#mix[@]} programs (${mix[*]}); reference: $reference"
[ ${#left_out[@]} -eq 0 ] || say "left out: $(printf '%s; ' "${left_out[@]}" | sed 's/; $//')"
if [ ${#mix[@]} -eq 0 ]; then
    say "FAIL: no program to run"
    exit 1
fi

# --- workers and the killer
# worker N: runs programs of the mix until stop_ms or $work/stop, one line
# per run in w$N/runs: program, start and end (ms), exit status, killed by
# the killer (1/0), the reference's stdout and status (1/0), the shim's
# "vgpu-server at" on stderr (1/0).  Keeps the output of 40 runs that did
# not match, 4 KiB of each.
worker() {
    local d=$work/w$1 p tp rc t0 t1 killed same said kept=0
    mkdir -p "$d"
    while [ "$(now_ms)" -lt "$stop_ms" ] && [ ! -e "$work/stop" ]; do
        p=${mix[RANDOM % ${#mix[@]}]}
        t0=$(now_ms)
        vgpu_bg "$d" "${path[$p]}"
        tp=$!
        echo "$tp" >"$d/running.new" && mv "$d/running.new" "$d/running"
        wait "$tp"                               # bounded by the timeout
        rc=$?
        t1=$(now_ms)
        rm -f "$d/running"
        killed=0
        [ -e "$d/killed.$tp" ] && [ "$rc" -eq 137 ] && killed=1
        rm -f "$d"/killed.*
        same=0
        [ "$rc" = "$(cat "$work/ref/$p/ref.rc")" ] && cmp -s "$d/out" "$work/ref/$p/ref.out" && same=1
        said=0
        grep -q 'vgpu-server at' "$d/err" && said=1
        echo "$p $t0 $t1 $rc $killed $same $said" >>"$d/runs"
        if [ "$same" = 0 ] && [ "$killed" = 0 ] && [ "$kept" -lt 40 ]; then
            kept=$((kept + 1))
            { echo "$p, $t0 to $t1 ms, exit $rc"; head -c 4096 "$d/out"; } >"$logs/w$1.$kept.out"
            head -c 4096 "$d/err" >"$logs/w$1.$kept.err"
        fi
    done
}
# killer: every 2 to 5 s, SIGKILL to the client of a worker's running run
# (up to 20 tries, 50 ms apart, to find one that still runs), marked first
# (w$N/killed.TIMEOUT_PID) so that the worker tells it apart.
killer() {
    local d tp c busy i pause
    while [ ! -e "$work/stop" ]; do
        pause=$((4 + RANDOM % 7))
        for ((i = 0; i < pause; i++)); do
            [ -e "$work/stop" ] && return
            sleep 0.5
        done
        for ((i = 0; i < 20; i++)); do
            busy=()
            for d in "$work"/w[0-9]*; do [ -f "$d/running" ] && busy+=("$d"); done
            if [ ${#busy[@]} -gt 0 ]; then
                d=${busy[RANDOM % ${#busy[@]}]}
                tp=$(cat "$d/running" 2>/dev/null)
                c=
                [[ $tp =~ ^[0-9]+$ ]] && [ "$tp" -gt 1 ] && c=$(pgrep -P "$tp" | head -n 1)
                if [ -n "$c" ] && [ "$c" -gt 1 ] && alive "$c"; then
                    touch "$d/killed.$tp"
                    kill -KILL "$c" 2>/dev/null && echo "$(now_ms) ${d##*/} $tp $c" >>"$logs/killer.log"
                    break
                fi
            fi
            sleep 0.05
        done
    done
}
t_soak=$(now_ms)
for ((i = 0; i < workers; i++)); do
    worker "$i" 2>>"$logs/worker.$i.log" &
    worker_pids+=($!)
done
: >"$logs/killer.log"
killer &
killer_pid=$!

# --- the restarter and the samplers, here until stop_ms
# restart WHY: SIGKILL to the server's group (unless it died by itself),
# up to 5 s for the old group's processes to be gone (counted), a new
# server on the same socket, the window recorded.
restarts=() deaths=0
restart() {
    local old=$server_pid before t_kill t_up left end gone
    before=$({ pgrep -g "$old"; pgrep -P "$old"; } | sort -u | grep -vx "$old")
    t_kill=$(now_ms)
    [ "$1" = ours ] && kill -KILL -- "-$old" 2>/dev/null
    wait "$old" 2>/dev/null                      # killed, or dead already
    end=$((t_kill + 5000)) gone=
    while :; do
        # shellcheck disable=SC2086 # $before: pids
        left=$(group_left "$old" $before)
        [ "$left" -eq 0 ] && { gone=$(($(now_ms) - t_kill)); break; }
        [ "$(now_ms)" -lt "$end" ] || break
        sleep 0.02
    done
    instance=$((instance + 1))
    if ! server_start "$sock" "$logs/server.$instance.log" 2>>"$logs/restarts.log"; then
        failures+=("the server did not start again after restart $instance")
        echo "$t_kill $(now_ms)" >>"$work/windows"
        touch "$work/stop"
        return 1
    fi
    t_up=$(now_ms)
    echo "$t_kill $((t_up + 1000))" >>"$work/windows"
    restarts+=("$(echo "$before" | grep -c .) $left ${gone:-none} $((t_up - t_kill))")
    [ "$left" -eq 0 ] || failures+=("$left processes of the server's group left 5 s after restart ${#restarts[@]}")
}
# pause: the longest this loop went between two turns (a turn sleeps 0.5
# s): a loaded or frozen machine shows here, and runs slow with it
next_restart=$((t_soak + restart_every * 1000)) next_sample=$t_soak last=$t_soak pause=0
while [ "$(now_ms)" -lt "$stop_ms" ] && [ ! -e "$work/stop" ]; do
    now=$(now_ms)
    [ $((now - last)) -le "$pause" ] || pause=$((now - last))
    last=$now
    if ! alive "$server_pid"; then
        deaths=$((deaths + 1))
        failures+=("the server died by itself (server.$instance.log)")
        restart died || break
        last=$(now_ms)
        continue
    fi
    if [ "$now" -ge "$next_sample" ]; then
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status" 2>/dev/null)
        echo "$instance ${rss:-0} $(pgrep -c -P "$server_pid") $now" >>"$work/samples"
        next_sample=$((next_sample + 10000))
    fi
    if [ "$now" -ge "$next_restart" ] && [ $((now + 15000)) -lt "$stop_ms" ]; then
        restart ours || break
        next_restart=$((next_restart + restart_every * 1000))
        last=$(now_ms)
        continue
    fi
    sleep 0.5
done

# --- the end: the workers' last runs, the sessions, the server, the GPU
touch "$work/stop"
end=$(($(now_ms) + (run_timeout + 10) * 1000))
for p in "${worker_pids[@]}" "$killer_pid"; do
    while alive "$p" && [ "$(now_ms)" -lt "$end" ]; do sleep 0.2; done
    if alive "$p"; then
        failures+=("a worker did not end after its run's timeout")
        kill -KILL "$p" 2>/dev/null
    fi
    wait "$p" 2>/dev/null                        # ended or killed just now
done
worker_pids=() killer_pid=
end=$(($(now_ms) + 5000))
while [ "$(pgrep -c -P "$server_pid")" -gt 0 ] && [ "$(now_ms)" -lt "$end" ]; do sleep 0.1; done
sessions_left=$(pgrep -c -P "$server_pid")
[ "$sessions_left" -eq 0 ] ||
    failures+=("$sessions_left sessions left 5 s after the last client: $(pgrep -a -P "$server_pid" | paste -sd ';')")
group=$server_pid
server_stop
end=$(($(now_ms) + 5000))
while [ "$(group_left "$group")" -gt 0 ] && [ "$(now_ms)" -lt "$end" ]; do sleep 0.1; done
group_after=$(group_left "$group")
[ "$group_after" -eq 0 ] || failures+=("$group_after processes of the server's group left 5 s after it stopped")
[ "$server_rc" = 0 ] || failures+=("the server's exit status after SIGTERM: $server_rc")
mem_after=
if [ -n "$mem_before" ]; then
    gpu_settles $((mem_before + tolerance)) 10
    mem_after=$gpu_last
fi

# --- the figures
cat "$work"/w*/runs >"$logs/runs.txt" 2>/dev/null
: >>"$work/windows"
cp "$work/windows" "$logs/windows.txt"
cp "$work/samples" "$logs/samples.txt" 2>/dev/null
# each run's class (killed, hang, match, window, unclear, mismatch) before
# its record, in classes.txt; the counts, and the programs of the failing
# classes
awk -v limit=$((run_timeout * 1000)) '
    FILENAME == ARGV[1] { ws[++nw] = $1; we[nw] = $2; next }
    {
        if ($5 == 1) c = "killed"
        else if ($4 == 124 || ($4 == 137 && $3 - $2 >= limit)) c = "hang"
        else if ($6 == 1) c = "match"
        else {
            inw = 0
            for (i = 1; i <= nw; i++) if ($2 <= we[i] && $3 >= ws[i]) inw = 1
            if (!inw) c = "mismatch"
            else if ($4 < 128 && $7 == 1) c = "window"
            else c = "unclear"
        }
        print c, $0
    }' "$work/windows" "$logs/runs.txt" >"$logs/classes.txt"
count() { awk -v c="$1" '$1 == c { n++ } END { print n + 0 }' "$logs/classes.txt"; }
which() {
    awk -v c="$1" '$1 == c { n[$2]++ } END { for (p in n) printf "%s%s x%d", s++ ? ", " : " (", p, n[p]; if (s) print ")" }' \
        "$logs/classes.txt"
}
runs=$(wc -l <"$logs/classes.txt") match=$(count match) mismatch=$(count mismatch) hang=$(count hang)
killed=$(count killed) window=$(count window) unclear=$(count unclear)
t_end=$(now_ms)
say "duration: $seconds s asked, $(((t_end - t_start) / 1000)) s in all, $(((stop_ms - t_soak) / 1000)) s of soak after the references; $workers workers, a client killed every 2-5 s, the server's group killed and restarted every $restart_every s, $run_timeout s per run"
say "runs: $runs"
say "matching outputs: $match"
say "mismatches (not killed by us, outside a restart window): $mismatch$(which mismatch)"
say "hangs (a run's ${run_timeout} s timeout hit): $hang$(which hang)"
say "runs killed by us: $killed ($(wc -l <"$logs/killer.log") kills sent; a run may end before its kill lands)"
say "runs failed in a restart window, ended by themselves with the shim's message: $window"
say "runs failed in a restart window without the shim's message or by a signal: $unclear$(which unclear)"
[ "$mismatch" -eq 0 ] || failures+=("$mismatch mismatches")
[ "$hang" -eq 0 ] || failures+=("$hang hangs")
[ "$unclear" -eq 0 ] || failures+=("$unclear unclear failures in restart windows")
if [ ${#restarts[@]} -gt 0 ]; then
    say "restarts: ${#restarts[@]}; session processes left 5 s after each: $(printf '%s\n' "${restarts[@]}" | awk '{ print $2 }' | paste -sd ' ') (of $(printf '%s\n' "${restarts[@]}" | awk '{ print $1 }' | paste -sd ' ')), all gone after ms: $(printf '%s\n' "${restarts[@]}" | awk '{ print $3 }' | paste -sd ' '); the new server listened after ms (from the kill): $(printf '%s\n' "${restarts[@]}" | awk '{ print $4 }' | paste -sd ' ')"
else
    say "restarts: 0 (the soak was shorter than $restart_every s)"
fi
say "server deaths not ours: $deaths"
say "sessions left 5 s after the last client: $sessions_left; processes of the server's group left 5 s after SIGTERM: $group_after; the server's exit status after SIGTERM: $server_rc"
say "server RSS KiB (every 10 s): $(awk '
    { n++; if (n == 1) first = $2; last = $2; if ($2 > max) max = $2
      if (!($1 in f)) { f[$1] = $2; order[++k] = $1 }; l[$1] = $2 }
    END { if (!n) { print "no samples"; exit }
          printf "first %d, last %d, max %d (%d samples); per server, first -> last:", first, last, max, n
          for (i = 1; i <= k; i++) printf " %d->%d", f[order[i]], l[order[i]] }' "$work/samples" 2>/dev/null)"
say "the soak's own loop: longest pause between turns $pause ms (turns sleep 500 ms; a long one means a loaded or frozen machine)"
say "sessions seen every 10 s: max $(awk '$3 > m { m = $3 } END { print m + 0 }' "$work/samples" 2>/dev/null) ($workers workers)"
if [ -n "$mem_before" ]; then
    say "gpu memory used MiB: before the server started $mem_before, after it stopped ${mem_after:-?} (tolerance $tolerance)"
    [ -n "$mem_after" ] && [ "$mem_after" -le $((mem_before + tolerance)) ] ||
        failures+=("GPU memory not back: $mem_before MiB before, ${mem_after:-?} after")
elif [ -n "$fake" ]; then
    say "gpu memory: not checked (the fake runtime)"
else
    say "gpu memory: not checked (no nvidia-smi)"
fi
tar -czf "$out/soak-logs.tgz" -C "$logs" . 2>/dev/null
if [ ${#failures[@]} -eq 0 ]; then
    say "PASS"
    exit 0
fi
say "FAIL: $(printf '%s; ' "${failures[@]}" | sed 's/; $//')"
exit 1
