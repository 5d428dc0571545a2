#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# vgpu-server's priority scheduler with clients contending for one GPU
# (issue 5), on a GPU host (never run by CI).  With the clients of
# bench/sched_bench.cu, through the shim against one vgpu-server that gives
# each socket an identity, and natively for reference:
#   0. one busy client alone (natively and through vgpu): what a kernel costs;
#   1. the high-priority probe alone, back to back and with think time;
#   2. the probe while two low-priority busy clients keep the GPU busy;
#   3. fairness: two busy clients of the same priority (low, low);
#   4. steps 1-3 natively: three plain processes, the GPU's own time-slicing;
#   5. the split between classes: a medium and a low busy client.
# Everything raw goes into OUTDIR (each client's .out/.err, probe latencies,
# server.log); OUTDIR/sched_summary.md has the table and the criteria computed
# from the numbers.  A step that fails is named there; the others still run.
# Exit status 0 when every step ran, 1 otherwise.  About 80 s on an H200.
#
#   bench/sched_bench.sh BUNDLE_OR_BUILD_DIR OUTDIR
#
# BUNDLE_OR_BUILD_DIR: a bundle made by scripts/gpu-bundle.sh (bin/vgpu-server,
# shim/, bench/sched_bench) or a build directory (server/vgpu-server, shim/,
# bench/sched_bench).
# Environment (defaults keep the whole run under about 3 minutes):
#   SCHED_REQUESTS (2000)    measured probe requests per run
#   SCHED_SECONDS (10)       length of the fairness and split runs
#   SCHED_KERNEL_MS (3)      GPU time of one busy kernel
#   SCHED_GAP_US (1000)      think time of the probe's second variant
#   SCHED_PROBE_MAX_S (15)   a probe stops measuring after this many seconds
#   SCHED_CUDA_LIB (/usr/local/cuda/lib64)  the real libcudart for native runs
#                            and for the server
#   SCHED_ADMIN (1)          0: start the server without --admin
set -u

if [ $# -ne 2 ]; then
    echo "usage: sched_bench.sh BUNDLE_OR_BUILD_DIR OUTDIR" >&2
    exit 2
fi
root=$(cd "$1" && pwd) || exit 2
out=$2
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 2
# numbers of an earlier run must not stand in for a step that fails now
rm -f "$out"/s[0-9]_*.out "$out"/s[0-9]_*.err "$out"/s[0-9]_*.lat "$out/server.log" \
    "$out/gpu.txt" "$out/sched_summary.md"

requests=${SCHED_REQUESTS:-2000}
seconds=${SCHED_SECONDS:-10}
kernel_ms=${SCHED_KERNEL_MS:-3}
gap_us=${SCHED_GAP_US:-1000}
probe_max_s=${SCHED_PROBE_MAX_S:-15}
cuda_lib=${SCHED_CUDA_LIB:-/usr/local/cuda/lib64}
cal_seconds=3        # step 0
lead_ms=1500         # setup time given to clients started together
probe_after_ms=1000  # busy clients run this long before the probe starts
budget_s=220         # steps that would end later are skipped

if [ -x "$root/bin/vgpu-server" ]; then
    server=$root/bin/vgpu-server
else
    server=$root/server/vgpu-server
fi
shim=$root/shim
bench=$root/bench/sched_bench

summary=$out/sched_summary.md
failures=$out/failures.txt
: > "$failures"
t_begin=$(date +%s)

# Every process started here, by pid; cleanup ends those still running.
pids=()
srv=
work=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-sched.XXXXXX") || exit 1

forget() {
    local p keep=()
    for p in "${pids[@]}"; do
        [ "$p" != "$1" ] && keep+=("$p")
    done
    pids=("${keep[@]}")
}

# shellcheck disable=SC2317 # called through the trap
cleanup() {
    local p alive
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for _ in $(seq 50); do
        alive=0
        for p in "${pids[@]}"; do
            kill -0 "$p" 2>/dev/null && alive=1
        done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do
        # timeout(1) leads a process group of its own: the client goes too
        kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "sched_bench.sh: interrupted" >> "$failures"; write_summary; exit 130' INT TERM

fail() {
    echo "$*" >> "$failures"
    echo "sched_bench.sh: $*" >&2
}

# the value of KEY in the result line of a client's .out file, or nothing
val() {
    [ -f "$out/$1.out" ] || return 0
    awk -v k="$2" '$1 == "busy" || $1 == "probe" {
        for (i = 2; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }' \
        "$out/$1.out"
}

# floating point in awk: calc EXPR [A B ...] with the arguments as a, b, c, d
calc() {
    awk -v a="${2:-}" -v b="${3:-}" -v c="${4:-}" -v d="${5:-}" "BEGIN { printf \"%s\", $1 }"
}

# Starts one client in the background; its pid (that of timeout(1), which
# passes SIGTERM on) is left in $client_pid.
#   start_client NAME native|SOCKET LIMIT_S ARGS...
start_client() {
    local name=$1 where=$2 limit=$3
    shift 3
    if [ "$where" = native ]; then
        env LD_LIBRARY_PATH="$cuda_lib" \
            timeout -k 5 "$limit" "$bench" "$@" > "$out/$name.out" 2> "$out/$name.err" &
    else
        env LD_LIBRARY_PATH="$shim" VGPU_SERVER="unix:$work/$where.sock" \
            timeout -k 5 "$limit" "$bench" "$@" > "$out/$name.out" 2> "$out/$name.err" &
    fi
    client_pid=$!
    pids+=("$client_pid")
}

# Waits for a client; nonzero (and a line in failures.txt) when it failed.
#   reap NAME PID
reap() {
    local rc
    wait "$2"
    rc=$?
    forget "$2"
    case $rc in
    0) return 0 ;;
    124 | 137) fail "$1: killed after its time limit (see $1.err)" ;;
    *) fail "$1: exit status $rc: $(tail -n 1 "$out/$1.err" 2>/dev/null)" ;;
    esac
    return 1
}

start_at() { echo $(($(date +%s%N) + $1 * 1000000)); }

# true when a step of about $2 seconds still fits in the budget
fits() {
    if [ $(($(date +%s) - t_begin + $2)) -gt "$budget_s" ]; then
        fail "$1: skipped, the run would pass ${budget_s} s"
        return 1
    fi
}

# where=native or a socket name; false (step failed) when the server is gone
usable() {
    [ "$2" = native ] && return 0
    if [ -z "$srv" ] || ! kill -0 "$srv" 2>/dev/null; then
        fail "$1: skipped, vgpu-server is not running (see server.log)"
        return 1
    fi
}

# One busy client alone for $cal_seconds.   calibrate NAME WHERE
calibrate() {
    usable "$1" "$2" && fits "$1" $((cal_seconds + 20)) || return
    start_client "$1" "$2" $((cal_seconds + 30)) --role busy --kernel-ms "$kernel_ms" \
        --seconds "$cal_seconds"
    reap "$1" "$client_pid"
}

# The probe alone.   solo NAME WHERE GAP_US
solo() {
    usable "$1" "$2" && fits "$1" $((probe_max_s + 20)) || return
    start_client "$1" "$2" $((probe_max_s + 60)) --role probe --requests "$requests" \
        --gap-us "$3" --max-seconds "$probe_max_s" --latencies "$out/$1.lat"
    reap "$1" "$client_pid"
}

# Two busy clients and the probe: the busy clients start together, the probe
# $probe_after_ms later; when it is done they are told to stop (SIGTERM).
#   contend NAME PROBE_WHERE BUSY1_WHERE BUSY2_WHERE GAP_US
contend() {
    local name=$1 t0 b1 b2 b bp p ok=0 cap=$((probe_max_s + 40))
    usable "$name" "$2" && usable "$name" "$3" && usable "$name" "$4" &&
        fits "$name" $((probe_max_s + 25)) || return
    t0=$(start_at "$lead_ms")
    start_client "$name.busy1" "$3" $((cap + 30)) --role busy --kernel-ms "$kernel_ms" \
        --seconds "$cap" --start-at "$t0"
    b1=$client_pid
    start_client "$name.busy2" "$4" $((cap + 30)) --role busy --kernel-ms "$kernel_ms" \
        --seconds "$cap" --start-at "$t0"
    b2=$client_pid
    start_client "$name.probe" "$2" $((cap + 30)) --role probe --requests "$requests" \
        --gap-us "$5" --max-seconds "$probe_max_s" --latencies "$out/$name.probe.lat" \
        --start-at $((t0 + probe_after_ms * 1000000))
    p=$client_pid
    # what vgpuctl shows in the middle of it
    if [ -n "$admin" ] && [ -x "$(dirname "$server")/vgpuctl" ] && [ "$2" != native ]; then
        (sleep 3
         "$(dirname "$server")/vgpuctl" --admin "$admin" > "$out/$name.vgpuctl.txt" 2>&1
         "$(dirname "$server")/vgpuctl" --admin "$admin" --json > "$out/$name.vgpuctl.json" 2>&1) &
    fi
    if reap "$name.probe" "$p"; then
        for b in 1 2; do
            [ "$b" = 1 ] && bp=$b1 || bp=$b2
            if ! kill -0 "$bp" 2>/dev/null; then
                fail "$name.busy$b: ended before the probe did, so the probe was not measured under full contention"
                ok=1
            fi
        done
    else
        ok=1
    fi
    kill -TERM "$b1" "$b2" 2>/dev/null
    reap "$name.busy1" "$b1" || ok=1
    reap "$name.busy2" "$b2" || ok=1
    return $ok
}

# Two busy clients for $seconds, started together.   pair NAME WHERE1 WHERE2
pair() {
    local name=$1 t0 b1 b2 ok=0
    usable "$name" "$2" && usable "$name" "$3" && fits "$name" $((seconds + 25)) || return
    t0=$(start_at "$lead_ms")
    start_client "$name.busy1" "$2" $((seconds + 40)) --role busy --kernel-ms "$kernel_ms" \
        --seconds "$seconds" --start-at "$t0"
    b1=$client_pid
    start_client "$name.busy2" "$3" $((seconds + 40)) --role busy --kernel-ms "$kernel_ms" \
        --seconds "$seconds" --start-at "$t0"
    b2=$client_pid
    reap "$name.busy1" "$b1" || ok=1
    reap "$name.busy2" "$b2" || ok=1
    return $ok
}

# ---- the summary, from whatever the .out files hold ----

# "A / B" kernels per second of a two-busy run and the max/min ratio
kps2() { echo "$(val "$1.busy1" kernels_per_s) / $(val "$1.busy2" kernels_per_s)"; }
# the two busy clients' kernels together, over one busy client's alone (step 0)
share() {
    local a b c solo=s0_busy_vgpu
    case $1 in s4_*) solo=s0_busy_native ;; esac
    a=$(val "$1.busy1" kernels_per_s) b=$(val "$1.busy2" kernels_per_s) c=$(val "$solo" kernels_per_s)
    [ -n "$a" ] && [ -n "$b" ] && [ -n "$c" ] || return 0
    calc '(a + b) / c' "$a" "$b" "$c" | awk '{ printf "%.2f", $1 }'
}
maxmin() {
    local a b
    a=$(val "$1.busy1" kernels_per_s) b=$(val "$1.busy2" kernels_per_s)
    [ -n "$a" ] && [ -n "$b" ] || return 0
    calc '(a > b ? a : b) / ((a < b ? a : b) > 0 ? (a < b ? a : b) : 1e-9)' "$a" "$b" |
        awk '{ printf "%.3f", $1 }'
}
ratio() {
    local x s
    x=$(val "$1" p50_us) s=$(val "$2" p50_us)
    [ -n "$x" ] && [ -n "$s" ] || return 0
    calc 'a / b' "$x" "$s" | awk '{ printf "%.2f", $1 }'
}
# true when a step of one of these runs failed or was skipped
broken() {
    local r
    for r in "$@"; do
        grep -q "^${r}[.:]" "$failures" && return 0
    done
    return 1
}
# a probe row:   prow LABEL PROBE_RUN SOLO_RUN [CONTENTION_RUN]
prow() {
    local n extra=
    n=$(val "$2" requests)
    [ -n "$n" ] && [ "$n" != "$requests" ] && extra=" ($n requests)"
    broken "$2" "$3" ${4:+"$4"} && extra="$extra (failed step)"
    echo "| $1$extra | $(val "$2" p50_us) | $(val "$2" p90_us) | $(val "$2" p99_us) |" \
        "$(ratio "$2" "$3") | ${4:+$(kps2 "$4")} | ${4:+$(share "$4")} | ${4:+$(maxmin "$4")} |"
}
# a busy-pair row:   brow LABEL RUN [NOTE]
brow() {
    local extra=
    broken "$2" && extra=" (failed step)"
    echo "| $1$extra | | | | | $(kps2 "$2")${3:+ $3} | $(share "$2") | $(maxmin "$2") |"
}
# a criterion line:   verdict TEXT VALUE LIMIT RUNS...
verdict() {
    local text=$1 v=$2 limit=$3
    shift 3
    if [ -z "$v" ]; then
        echo "- $text: not measured"
    elif broken "$@"; then
        echo "- $text: $v (limit $limit): not judged, a step of the run failed"
    elif [ "$(calc 'a <= b' "$v" "$limit")" = 1 ]; then
        echo "- $text: $v (limit $limit): met"
    else
        echo "- $text: $v (limit $limit): not met"
    fi
}

write_summary() {
    local kn kv gpu
    gpu=$(cat "$out/gpu.txt" 2>/dev/null)
    kn=$(val s0_busy_native kernels_per_s) kv=$(val s0_busy_vgpu kernels_per_s)
    {
        echo "# vgpu scheduler benchmark"
        echo
        echo "- GPU, driver: ${gpu:-unknown}"
        echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); wall time $(($(date +%s) - t_begin)) s"
        echo "- probe: $requests requests of 4 KiB H2D + tiny kernel + 4 KiB D2H, synchronous;" \
            "back to back, or ${gap_us} µs apart; at most ${probe_max_s} s measured"
        echo "- busy: kernels of ${kernel_ms} ms of GPU time (one 32-thread block per SM," \
            "at most 2 outstanding); fairness and split runs ${seconds} s"
        echo "- one busy client alone: native ${kn:-?} kernels/s" \
            "(${kn:+$(calc '1000 / a' "$kn" | awk '{ printf "%.2f", $1 }')} ms each)," \
            "through vgpu ${kv:-?} kernels/s"
        echo "- sockets: high (vm 1, high), low and low2 (vm 2 and 3, low), med (vm 4, medium)"
        echo
        echo "| scenario | high p50 µs | p90 µs | p99 µs | p50 / solo p50 | busy kernels/s per client | busy sum / one alone | max/min |"
        echo "|---|---|---|---|---|---|---|---|"
        prow "vgpu: high alone" s1_solo_vgpu s1_solo_vgpu
        prow "vgpu: high + 2 low busy" s2_contend_vgpu.probe s1_solo_vgpu s2_contend_vgpu
        prow "vgpu: high alone, ${gap_us} µs think time" s1_solo_vgpu_gap s1_solo_vgpu_gap
        prow "vgpu: high + 2 low busy, ${gap_us} µs think time" s2_contend_vgpu_gap.probe \
            s1_solo_vgpu_gap s2_contend_vgpu_gap
        prow "native: probe alone" s4_solo_native s4_solo_native
        prow "native: probe + 2 busy" s4_contend_native.probe s4_solo_native s4_contend_native
        prow "native: probe alone, ${gap_us} µs think time" s4_solo_native_gap s4_solo_native_gap
        prow "native: probe + 2 busy, ${gap_us} µs think time" s4_contend_native_gap.probe \
            s4_solo_native_gap s4_contend_native_gap
        brow "vgpu: low + low busy (fairness)" s3_fair_vgpu
        brow "native: busy + busy (fairness)" s4_fair_native
        brow "vgpu: medium + low busy (split)" s5_split_vgpu "(medium / low)"
        echo
        echo "p50 / solo p50: against the probe alone in the same mode and think time." \
            "busy sum / one alone: both busy clients' kernels/s over one busy client's alone" \
            "(vgpu or native), 1.00 being the whole GPU.  max/min: the busy clients'" \
            "kernels/s (of two classes in the split row)."
        echo
        echo "## Criteria, from the numbers above"
        echo
        verdict "vgpu, high p50 under contention / alone" \
            "$(ratio s2_contend_vgpu.probe s1_solo_vgpu)" 1.5 s2_contend_vgpu s1_solo_vgpu
        verdict "vgpu, same with ${gap_us} µs think time" \
            "$(ratio s2_contend_vgpu_gap.probe s1_solo_vgpu_gap)" 1.5 s2_contend_vgpu_gap s1_solo_vgpu_gap
        verdict "vgpu, two low clients, max/min throughput" "$(maxmin s3_fair_vgpu)" 1.10 s3_fair_vgpu
        echo
        echo "Native reference (no scheduler):"
        echo
        verdict "native, probe p50 under contention / alone" \
            "$(ratio s4_contend_native.probe s4_solo_native)" 1.5 s4_contend_native s4_solo_native
        verdict "native, same with ${gap_us} µs think time" \
            "$(ratio s4_contend_native_gap.probe s4_solo_native_gap)" 1.5 s4_contend_native_gap s4_solo_native_gap
        verdict "native, two busy processes, max/min throughput" "$(maxmin s4_fair_native)" 1.10 s4_fair_native
        echo
        echo "## Failed or skipped steps"
        echo
        if [ -s "$failures" ]; then
            sed 's/^/- /' "$failures"
        else
            echo "none"
        fi
    } > "$summary"
}

# ---- the run ----

{
    echo "bundle or build: $root"
    echo "requests=$requests seconds=$seconds kernel_ms=$kernel_ms gap_us=$gap_us probe_max_s=$probe_max_s"
} > "$out/params.txt"
if ! command -v nvidia-smi > /dev/null; then
    fail "nvidia-smi: not found"
elif ! nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$out/gpu.txt" 2>&1; then
    fail "nvidia-smi: $(head -n 1 "$out/gpu.txt")"
fi
for f in "$server" "$shim/libcudart.so.13" "$bench"; do
    [ -e "$f" ] || fail "$f is missing"
done

# The server gets the real runtime, never the shim; libprotobuf-c from the
# bundle for hosts without the package (as scripts/gpu-check.sh does).
mkdir -p "$work/deps"
[ -f "$shim/libprotobuf-c.so.1" ] && cp "$shim/libprotobuf-c.so.1" "$work/deps/"
admin=$work/admin.sock
[ "${SCHED_ADMIN:-1}" = 0 ] && admin=
if [ -x "$server" ]; then
    env LD_LIBRARY_PATH="$cuda_lib:$work/deps" "$server" \
        --listen "unix:$work/high.sock,vm_id=1,priority=high" \
        --listen "unix:$work/low.sock,vm_id=2,priority=low" \
        --listen "unix:$work/low2.sock,vm_id=3,priority=low" \
        --listen "unix:$work/med.sock,vm_id=4,priority=medium" \
        ${admin:+--admin "$admin"} --cache-dir "$work/cache" --log-level info \
        2> "$out/server.log" &
    srv=$!
    pids+=("$srv")
    up=0
    for _ in $(seq 100); do
        kill -0 "$srv" 2>/dev/null || break
        if [ -S "$work/high.sock" ] && [ -S "$work/low.sock" ] && [ -S "$work/low2.sock" ] &&
            [ -S "$work/med.sock" ]; then
            up=1
            break
        fi
        sleep 0.1
    done
    if [ "$up" = 0 ]; then
        fail "vgpu-server did not come up with its four sockets: $(head -n 1 "$out/server.log")"
        kill -TERM "$srv" 2>/dev/null
        wait "$srv" 2>/dev/null
        forget "$srv"
        srv=
    fi
fi

# 0: what one kernel costs (the vgpu run also fills the fatbin cache)
calibrate s0_busy_native native
calibrate s0_busy_vgpu low
# 1, 2: the high-priority probe alone and against two low busy clients
solo s1_solo_vgpu high 0
contend s2_contend_vgpu high low low2 0
solo s1_solo_vgpu_gap high "$gap_us"
contend s2_contend_vgpu_gap high low low2 "$gap_us"
# 3: fairness within one class
pair s3_fair_vgpu low low2
# 4: the same natively
solo s4_solo_native native 0
contend s4_contend_native native native native 0
solo s4_solo_native_gap native "$gap_us"
contend s4_contend_native_gap native native native "$gap_us"
pair s4_fair_native native native
# 5: the split between two classes (busy1 medium, busy2 low)
pair s5_split_vgpu med low

if [ -n "$srv" ]; then
    kill -TERM "$srv" 2>/dev/null
    wait "$srv"
    rc=$?
    forget "$srv"
    [ "$rc" = 0 ] || fail "vgpu-server: exit status $rc after SIGTERM"
fi
write_summary
cat "$summary"
[ ! -s "$failures" ]
