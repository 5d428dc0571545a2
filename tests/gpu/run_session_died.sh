#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# A session's driver dies on the GPU (issue 15; a GPU host's check, never
# run by CI), with a bundle made by scripts/gpu-bundle.sh: the session
# process of a victim program is sent SIGSEGV while the program is inside
# GPU work (vgpu_holder: a spinning kernel, a memset of all it holds, a
# synchronize, round after round) and holds VGPU_DIED_MIB of device memory
# (default 1024), with a bystander (another vgpu_holder,
# VGPU_DIED_BYSTANDER_MIB, default 512) running beside it.  What must hold:
#   - the victim's failing call returns cudaErrorNoDevice in under a second,
#     the call after it too, its stderr says it lost the connection, and it
#     ends by itself (no hang);
#   - the server reaps the session (no zombie) and logs "process N ended by
#     signal 11 (Segmentation fault)";
#   - the GPU's used memory (nvidia-smi) grew by at least the victim's
#     allocation while it ran, and is back within VGPU_GPU_MEM_TOLERANCE_MIB
#     (default 8) of what it was with the bystander alone within 5 s
#     (skipped without nvidia-smi or on the fake);
#   - vgpuctl shows the bystander's session alone, holding its memory and
#     still making calls; the bystander ends on SIGTERM with no error;
#   - a new program is served afterwards.
# With VGPU_FAKECUDA=DIR (the build's tests/fakecuda) the server runs on the
# fake runtime, where the default sizes are 64 and 32 MiB: the same checks
# but the GPU's memory.  The server's core limit is 0 (as systemd's
# default LimitCORE=0 has it: see scripts/gpu-faults.sh), and the host's
# core_pattern and suid_dumpable are recorded.  One line per
# check in OUTDIR/session_died.txt, PASS or FAIL last; the logs in
# OUTDIR/session_died-logs.tgz.  Exit 0 on PASS only.
#   tests/gpu/run_session_died.sh BUNDLE OUTDIR
set -u
if [ $# -ne 2 ]; then
    echo "usage: run_session_died.sh BUNDLE OUTDIR" >&2
    exit 2
fi
summary=session_died.txt
# shellcheck source-path=SCRIPTDIR source=../../scripts/gpu-host.sh
. "$(dirname "$0")/../../scripts/gpu-host.sh"
# shellcheck source-path=SCRIPTDIR source=../../scripts/gpu-faults.sh
. "$(dirname "$0")/../../scripts/gpu-faults.sh"
if [ -n "$fake" ]; then
    victim_mib=${VGPU_DIED_MIB:-64} bystander_mib=${VGPU_DIED_BYSTANDER_MIB:-32}
else
    victim_mib=${VGPU_DIED_MIB:-1024} bystander_mib=${VGPU_DIED_BYSTANDER_MIB:-512}
fi
tolerance=${VGPU_GPU_MEM_TOLERANCE_MIB:-8}
holder=$bundle/tests/vgpu_holder
work=$(mktemp -d /tmp/vgpu-died.XXXXXX)
sock=$work/s.sock
tpids=()
# shellcheck disable=SC2317 # called through the trap
cleanup() {
    local p
    exec 2>/dev/null                             # no "Killed" for each of them
    for p in "${tpids[@]}"; do kill -KILL $(pgrep -P "$p") "$p"; done
    [ -z "$server_pid" ] || kill -KILL -- "-$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
failures=()
ok() { say "$1: ok${2:+ ($2)}"; }
bad() { say "$1: FAILED${2:+ ($2)}"; failures+=("$1"); }
# finish: the logs and the verdict; exits
finish() {
    tar -czf "$out/session_died-logs.tgz" -C "$work" --exclude cache --exclude 's.sock*' . 2>/dev/null
    if [ ${#failures[@]} -eq 0 ]; then
        say "PASS"
        exit 0
    fi
    say "FAIL: $(printf '%s; ' "${failures[@]}" | sed 's/; $//')"
    exit 1
}
# holder NAME MIB: starts vgpu_holder through vgpu (CUDA_VISIBLE_DEVICES= in
# its own environment), under a 300 s timeout whose pid goes to tpids,
# output to NAME.out and NAME.err; waits up to 120 s for "ready".  Sets
# client (the program's pid).
holder() {
    local end
    timeout -k 5 300 env -u LD_PRELOAD CUDA_VISIBLE_DEVICES= VGPU_SERVER="unix:$sock" \
        LD_LIBRARY_PATH="$bundle/shim" "$holder" "$2" >"$work/$1.out" 2>"$work/$1.err" &
    tpids+=($!)
    client=$(child_of $!) ||
        { bad "$1 started" "it ended at once: $(cat "$work/$1.out" "$work/$1.err" | tail -n 3 | tr '\n' ' ')"; return 1; }
    end=$(($(now_ms) + 120000))
    until grep -q '^ready$' "$work/$1.out"; do
        if ! alive "$client" || [ "$(now_ms)" -ge "$end" ]; then
            bad "$1 ready" "$(cat "$work/$1.out" "$work/$1.err" | tail -n 3 | tr '\n' ' ')"
            return 1
        fi
        sleep 0.1
    done
}
# stop_holder CLIENT TIMEOUT_PID: SIGTERM to CLIENT, up to 10 s for it to
# end (then SIGKILL); sets rc, the exit status timeout passed on.
stop_holder() {
    local end=$(($(now_ms) + 10000))
    kill -TERM "$1" 2>/dev/null
    while alive "$1" && [ "$(now_ms)" -lt "$end" ]; do sleep 0.05; done
    alive "$1" && kill -KILL "$1" 2>/dev/null
    wait "$2" 2>/dev/null                        # its program ended or was killed just now
    rc=$?
}
# ctl_json FILE: vgpuctl's JSON into FILE.
ctl_json() { timeout 10 "$bundle/bin/vgpuctl" --admin "$sock.admin" --json >"$1" 2>&1; }
# jq_py FILE EXPRESSION: EXPRESSION over the JSON j (python3), printed.
jq_py() { python3 -c "import json,sys; j = json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null; }

if [ -n "$fake" ]; then
    say "gpu: none, the fake runtime at $fake"
else
    say "gpu: $(timeout 20 nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -n 4 | paste -sd ';')"
fi
say "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); victim holds $victim_mib MiB, bystander $bystander_mib MiB"
say "core dumps: the server's limit 0; kernel.core_pattern '$(cat /proc/sys/kernel/core_pattern 2>/dev/null)', fs.suid_dumpable $(cat /proc/sys/fs/suid_dumpable 2>/dev/null)"
[ -x "$holder" ] || { bad "bundle" "no tests/vgpu_holder in $bundle: make the bundle again"; finish; }
server_check_libs 2>>"$work/server.log" || { bad "server libraries" "$(tail -n 1 "$work/server.log")"; finish; }
mem0=$(gpu_used_mib)
server_start "$sock" "$work/server.log" 2>>"$work/setup.err" ||
    { bad "server started" "$(cat "$work/setup.err")"; finish; }

# --- the bystander, then the victim; their sessions by their titles
holder bystander "$bystander_mib" || finish
bystander=$client
by_session=$(session_of "$bystander") || { bad "bystander's session" "none names pid $bystander"; finish; }
sleep 1
mem1=$(gpu_used_mib)
holder victim "$victim_mib" || finish
victim=$client
victim_session=$(session_of "$victim") || { bad "victim's session" "none names pid $victim"; finish; }
sleep 1
mem2=$(gpu_used_mib)
ps -o pid,ppid,pgid,stat,rss,args --ppid "$server_pid" >"$work/ps.txt"
ctl_json "$work/before.json"
say "sessions: bystander $bystander served by $by_session, victim $victim served by $victim_session; vgpuctl shows $(jq_py "$work/before.json" 'len(j["sessions"])') sessions"
if [ -n "$mem0" ] && { [ -z "$mem1" ] || [ -z "$mem2" ]; }; then
    bad "gpu memory while both ran" "nvidia-smi answered nothing: '$mem1' with the bystander, '$mem2' with both"
    mem0=
elif [ -n "$mem0" ]; then
    if [ $((mem2 - mem1)) -ge "$victim_mib" ]; then
        ok "gpu memory while both ran" "MiB used: $mem0 before the server, $mem1 with the bystander, $mem2 with both"
    else
        bad "gpu memory while both ran" "the victim's $victim_mib MiB not seen: $mem0 before the server, $mem1 with the bystander, $mem2 with both"
    fi
fi

# --- the victim's session dies under its GPU work
t_kill=$(now_ms)
kill -SEGV "$victim_session"
end=$((t_kill + 10000))
while alive "$victim" && [ "$(now_ms)" -lt "$end" ]; do sleep 0.02; done
t_end=$(($(now_ms) - t_kill))
if alive "$victim"; then
    bad "victim ends" "still runs 10 s after its session was sent SIGSEGV: a hang"
    kill -KILL "$victim" 2>/dev/null
else
    ok "victim ends" "$t_end ms after its session was sent SIGSEGV"
fi
wait "${tpids[1]}" 2>/dev/null                   # ended, or killed just now
victim_rc=$?
line=$(grep '^error: ' "$work/victim.out")
took=$(echo "$line" | sed -n 's/.*(the call took \([0-9]*\) ms)$/\1/p')
if [ "$victim_rc" -eq 1 ] && echo "$line" | grep -q '^error: cudaErrorNoDevice in ' && [ -n "$took" ] &&
    [ "$took" -lt 1000 ] && grep -q '^the next call: cudaErrorNoDevice$' "$work/victim.out"; then
    ok "victim's failing call" "${line#error: }; the next call: cudaErrorNoDevice"
else
    bad "victim's failing call" "exit $victim_rc; $(tr '\n' ' ' <"$work/victim.out")"
fi
if grep -q 'lost the connection to vgpu-server' "$work/victim.err"; then
    ok "victim's message" "$(grep -m 1 'lost the connection' "$work/victim.err")"
else
    bad "victim's message" "no 'lost the connection to vgpu-server' on stderr: $(head -c 300 "$work/victim.err")"
fi

# --- the server's side
end=$(($(now_ms) + 2000))
while [ -e "/proc/$victim_session" ] && [ "$(now_ms)" -lt "$end" ]; do sleep 0.05; done
if [ -e "/proc/$victim_session" ]; then
    bad "session reaped" "$(ps -o pid,stat,args -p "$victim_session" | tail -n 1)"
else
    ok "session reaped" "no process $victim_session, not even a zombie"
fi
children=$(pgrep -P "$server_pid" | paste -sd ' ')
if [ "$children" = "$by_session" ]; then
    ok "server's processes" "the bystander's session alone"
else
    bad "server's processes" "children '$children', want '$by_session'"
fi
if grep -q "process $victim_session ended by signal 11 (Segmentation fault)" "$work/server.log"; then
    ok "server's log" "$(grep -o "process $victim_session ended by signal 11 ([^)]*)[^;]*" "$work/server.log" | head -n 1)"
else
    bad "server's log" "no 'process $victim_session ended by signal 11 (Segmentation fault)'"
fi
if [ -n "$mem0" ]; then
    if gpu_settles $((mem1 + tolerance)) 5; then
        ok "gpu memory back" "$gpu_last MiB $(($(now_ms) - t_kill)) ms after the kill; $mem1 with the bystander alone, $mem2 with both"
    else
        bad "gpu memory back" "$gpu_last MiB 5 s on; $mem1 with the bystander alone, $mem2 with both"
    fi
    timeout 20 nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader >"$work/apps.out" 2>&1
elif [ -n "$fake" ]; then
    say "gpu memory back: not checked (the fake runtime)"
else
    say "gpu memory back: not checked (no nvidia-smi)"
fi
ctl_json "$work/after.json"
want=$((bystander_mib << 20))
got=$(jq_py "$work/after.json" '" ".join("%d:%d" % (s["pid"], s["device_memory"]) for s in j["sessions"])')
if [ "$got" = "$by_session:$want" ]; then
    ok "vgpuctl" "one session, the bystander's, holding $want bytes"
else
    bad "vgpuctl" "sessions (pid:bytes) '$got', want '$by_session:$want'"
fi
calls1=$(jq_py "$work/after.json" 'j["sessions"][0]["calls"]')
sleep 1
ctl_json "$work/later.json"
calls2=$(jq_py "$work/later.json" 'j["sessions"][0]["calls"]')
if [ -n "$calls1" ] && [ -n "$calls2" ] && [ "$calls2" -gt "$calls1" ] && alive "$bystander"; then
    ok "bystander runs on" "$((calls2 - calls1)) calls in a second"
else
    bad "bystander runs on" "calls $calls1 then $calls2; $(tr '\n' ' ' <"$work/bystander.out")"
fi

# --- a new program, then the bystander's end
if holder again 16; then
    stop_holder "$client" "${tpids[2]}"
    if [ "$rc" -eq 0 ] && grep -q '^done: no error$' "$work/again.out"; then
        ok "a new program" "allocated, ran and freed 16 MiB"
    else
        bad "a new program" "exit $rc; $(tr '\n' ' ' <"$work/again.out")"
    fi
fi
stop_holder "$bystander" "${tpids[0]}"
if [ "$rc" -eq 0 ] && grep -q '^done: no error$' "$work/bystander.out"; then
    ok "bystander's end" "no error, exit 0 on SIGTERM"
else
    bad "bystander's end" "exit $rc; $(tr '\n' ' ' <"$work/bystander.out")"
fi
server_stop
if [ "$server_rc" = 0 ]; then
    ok "server's end" "exit 0 on SIGTERM"
else
    bad "server's end" "exit status $server_rc"
fi
if [ -n "$mem0" ]; then
    if gpu_settles $((mem0 + tolerance)) 10; then
        ok "gpu memory after the server stopped" "$gpu_last MiB, $mem0 before it started"
    else
        bad "gpu memory after the server stopped" "$gpu_last MiB 10 s on, $mem0 before it started"
    fi
fi
finish
