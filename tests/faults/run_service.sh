#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# run_service.sh NAME SERVER FAKE_DIR SHIM_DIR VICTIM WORK
#
# vgpu-server as systemd runs it (Type=notify, ExecReload=kill -HUP), on
# the fake runtime, with python3 standing in for systemd's notify socket and
# journald's stream:
#   - READY=1 once it listens, RELOADING=1 then READY=1 around a SIGHUP,
#     STOPPING=1 at SIGTERM (sd_notify over $NOTIFY_SOCKET);
#   - SIGHUP reads the file again: a listener's new identity and a VM's new
#     limit apply to the next session, the socket stays open, a new
#     listener is named as needing a restart; a file with an error changes
#     nothing and says so;
#   - a session's process title names its tenant (vgpu-server: vm 4 pool A
#     medium (...)) and its comm the same in 15 bytes;
#   - with stderr as journald's stream ($JOURNAL_STREAM matches it), lines
#     carry syslog priorities (<6> info, <4> warning);
#   - --version prints the project's version;
#   - vgpuctl shows the version and uptime, the VM's use against its new
#     limit (text, --json with a timestamp, --prometheus), and -l repeats.
set -u
name=$1 server=$2 fake=$3 shim_dir=$4 victim=$5 work=$6
server_pid=
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"
fail() {
    echo "$name: $*" >&2
    tail -n 20 "$work/server.log" >&2
    exit 1
}
fresh_work s
command -v python3 >/dev/null || fail "python3 is needed to stand for systemd"
"$server" --version | grep -Eq '^vgpu-server [0-9]+\.[0-9]+\.[0-9]+$' ||
    fail "--version: $("$server" --version)"

# systemd's notify socket: python3 prints each datagram, one line per message
notify=$work/notify.sock
python3 -u - "$notify" > "$work/notify.txt" 2>&1 <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    print(s.recv(4096).decode().replace("\n", " | "))
EOF
listener=$!
trap 'stop_server; kill $listener 2>/dev/null; [ -z "$sockdir" ] || rm -rf "$sockdir"' EXIT
i=0
while [ ! -S "$notify" ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
cat > "$work/server.ini" <<EOF
[server]
cache_dir = $work/cache
log_level = info

[listen local]
address = unix:$sock
vm_id = 3

[vm 3]
memory = 1G
EOF
: > "$work/server.log"
journal=$(stat -c '%d:%i' "$work/server.log")
# a cache readable by others: a warning at start, whatever user runs the test
mkdir -m 0755 "$work/cache"
NOTIFY_SOCKET=$notify JOURNAL_STREAM=$journal start_server "$fake" --config "$work/server.ini"
wait_for() {   # wait_for FILE PATTERN WHAT
    i=0
    while ! grep -q "$2" "$1"; do
        [ "$i" -lt 50 ] || fail "$3"
        sleep 0.1
        i=$((i + 1))
    done
}
wait_for "$work/notify.txt" 'READY=1' "no READY=1 on the notify socket: $(cat "$work/notify.txt")"
grep -q '^<6>vgpu-server\[[0-9]*\] info: listening on' "$work/server.log" ||
    fail "no <6> priority on info lines with JOURNAL_STREAM set: $(head -n 3 "$work/server.log")"
grep -q '^<4>vgpu-server\[[0-9]*\] warn: ' "$work/server.log" || fail "no <4> priority on warnings"

session_of() {   # session_of TAG: runs VICTIM, waits until ready; $session and $vpid set
    env -u LD_PRELOAD VGPU_SERVER="unix:$sock" LD_LIBRARY_PATH="$shim_dir" timeout 60 "$victim" \
        > "$work/$1.out" 2> "$work/$1.err" &
    vpid=$!
    wait_for "$work/$1.out" ready "the $1 program never got ready: $(cat "$work/$1.err")"
    session=$(pgrep -P "$server_pid" | tail -n 1)
}
session_of first
grep -q 'session for fault_victim .*vm 3 pool A' "$work/server.log" || fail "the first session is not vm 3"
kill "$vpid"
wait "$vpid" 2>/dev/null

# SIGHUP: the listener's identity changes for new sessions; a new listener waits for a restart
sed -i 's/^vm_id = 3$/vm_id = 4/' "$work/server.ini"
printf '[vm 4]\nmemory = 2G\n[listen more]\naddress = unix:%s.more\n' "$sock" >> "$work/server.ini"
kill -HUP "$server_pid"
wait_for "$work/server.log" 'read again' "no line saying the configuration was read again"
wait_for "$work/notify.txt" 'RELOADING=1' "no RELOADING=1 after SIGHUP"
wait_for "$work/server.log" "SIGHUP: unix:$sock.more is new: it opens at a restart" \
    "the new listener was not named as waiting for a restart"
[ -S "$sock" ] || fail "the socket is gone after SIGHUP"
kill -0 "$server_pid" || fail "the server died of SIGHUP"
i=0
while [ "$(grep -c 'READY=1' "$work/notify.txt")" -lt 2 ]; do
    [ "$i" -lt 50 ] || fail "no READY=1 after the reload"
    sleep 0.1
    i=$((i + 1))
done
session_of second
grep -q 'session for fault_victim .*vm 4 pool A' "$work/server.log" ||
    fail "the session after SIGHUP is not vm 4"
# vgpuctl: version, the VM's new limit against its use, Prometheus metrics, -l
ctl=$(dirname "$server")/vgpuctl
"$ctl" --admin "$sock.admin" > "$work/ctl.txt" || fail "vgpuctl failed"
grep -q '^vgpu-server [0-9.]*, up [0-9:]*$' "$work/ctl.txt" || fail "vgpuctl: no version and uptime: $(head -n 2 "$work/ctl.txt")"
grep -Eq '^4 +1 / 64 +0\.0 \(2048\)' "$work/ctl.txt" || fail "vgpuctl: vm 4's line is not 1 session, 2048 MiB limit: $(cat "$work/ctl.txt")"
"$ctl" --admin "$sock.admin" --json > "$work/ctl.json" || fail "vgpuctl --json failed"
python3 - "$work/ctl.json" <<'EOF2' || fail "vgpuctl --json: $(cat "$work/ctl.json")"
import json, sys, time
d = json.load(open(sys.argv[1]))
assert d["version"].startswith("vgpu-server "), d["version"]
assert abs(d["timestamp"] - time.time()) < 60 and d["uptime_s"] >= 0, d
vm = [v for v in d["vms"] if v["vm_id"] == 4][0]
assert vm["sessions"] == 1 and vm["limits"]["device_memory"] == 2 << 30, vm
assert any(v["vm_id"] == 3 and v["sessions"] == 0 for v in d["vms"]), d["vms"]
assert len(d["sessions"]) == 1 and d["sessions"][0]["vm_id"] == 4, d["sessions"]
EOF2
"$ctl" --admin "$sock.admin" --prometheus > "$work/ctl.prom" || fail "vgpuctl --prometheus failed"
grep -q '^vgpu_vm_device_memory_limit_bytes{vm="4"} 2147483648$' "$work/ctl.prom" ||
    fail "vgpuctl --prometheus: no limit for vm 4: $(cat "$work/ctl.prom")"
grep -q '^vgpu_vm_sessions{vm="4"} 1$' "$work/ctl.prom" || fail "vgpuctl --prometheus: vm 4's sessions"
[ "$(grep -c '^# TYPE ' "$work/ctl.prom")" -eq "$(grep '^# TYPE ' "$work/ctl.prom" | sort -u | wc -l)" ] ||
    fail "vgpuctl --prometheus: a metric's TYPE twice"
timeout 2.5 "$ctl" --admin "$sock.admin" -l 1 > "$work/ctl.loop"
[ "$(grep -c ', up ' "$work/ctl.loop")" -ge 2 ] || fail "vgpuctl -l 1 did not print twice in 2.5 s"
title=$(tr '\0' ' ' < "/proc/$session/cmdline" | sed 's/ *$//')
case $title in
"vgpu-server: vm 4 pool A medium (fault_victim, pid "[0-9]*")"*) ;;
*) fail "the session's title is '$title'" ;;
esac
[ "$(cat "/proc/$session/comm")" = "vm 4 pool A med" ] || fail "the session's comm is '$(cat "/proc/$session/comm")'"
kill "$vpid"
wait "$vpid" 2>/dev/null

# a file with an error: nothing changes (not the listener's new vm_id either), and the log says so
sed -i 's/^vm_id = 4$/vm_id = 5/' "$work/server.ini"
printf '[vm 5]\nmemory = lots\n' >> "$work/server.ini"
kill -HUP "$server_pid"
wait_for "$work/server.log" '<3>vgpu-server.*SIGHUP: .*server.ini:[0-9]*: memory: .*serving on with the configuration before' \
    "a broken file on SIGHUP was not reported (with its line, at error priority)"
session_of third
[ "$(grep -c 'session for fault_victim .*vm 4 pool A' "$work/server.log")" -eq 2 ] ||
    fail "after a broken file, a new session is not vm 4 as before"
kill "$vpid"
wait "$vpid" 2>/dev/null
stop_server
wait_for "$work/notify.txt" 'STOPPING=1' "no STOPPING=1 at SIGTERM"
echo "$name: title '$title'; notify: $(tr '\n' ' ' < "$work/notify.txt")"
echo "$name: passed"
