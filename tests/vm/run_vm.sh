#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# VM test: boot one or more guests (a Debian kernel and the busybox
# initramfs of make-initramfs.sh) under QEMU with the vgpu-stub device
# linked to a fresh vgpu-server, run the example programs in each guest
# through the shim, and require each program's stdout, byte for byte, and
# exit status to match a native run of the same binary on this host.
# Without a GPU both fail the same way; with one, both succeed the same way.
#
#   run_vm.sh [--guests N] [--firmware DIR]... [--shared-bar SIZE] [--fake-runtime DIR]
#             [--expected DIR] [--restart-server-at TEXT] [--flat-rss KIB]
#             NAME QEMU KERNEL INITRAMFS SERVER_BIN WORKDIR EXAMPLE...
#
#   --guests N      boot N guests at once against the one server (default
#                   1); guest g has vm_id g, guest 1 priority 2 (high),
#                   guest 2 priority 0 (low), any further guest 1 (medium);
#                   every guest runs every EXAMPLE, with VGPU_TEST_GUEST=g
#                   in its environment (load_client mixes it into the
#                   pattern it checks, so a reply routed to another guest
#                   is a wrong answer)
#   --firmware DIR  a directory for QEMU's -L (repeatable; Debian's seabios
#                   and qemu-system-data directories when none is given and
#                   they exist)
#   --shared-bar SIZE   give each device a shared BAR of SIZE (a
#                   memory-backend-memfd, e.g. 64M)
#   --fake-runtime DIR  start the server with LD_LIBRARY_PATH=DIR (the fake
#                   CUDA runtime of tests/fakecuda)
#   --expected DIR  compare each program's guest stdout with DIR/NAME.txt
#                   (and exit 0) instead of running it natively
#   --stderr-has PROGRAM TEXT  PROGRAM's guest stderr must hold TEXT (the
#                   shim's messages), beside the stdout comparison; %g in
#                   TEXT stands for the guest's number
#   --restart-server-at TEXT   once the server's log has a line with TEXT,
#                   a second later kill the server's whole process group
#                   (SIGKILL) and start a new server on the same socket:
#                   the guests' devices reconnect to it (reconnect=1) and
#                   the programs after that run on it, without a reboot;
#                   the two servers' logs are checked together
#   --flat-rss KIB  the server's memory stays flat and nothing is left: its
#                   main process's VmRSS is read once it listens and again
#                   after the last guest powered off and every link and
#                   session process ended (within 5 s), and may grow by KIB
#                   at most; vgpuctl (beside SERVER_BIN) must then show no
#                   session and no device link.  The figures go in the
#                   summary line "server main process ...".
#   QEMU            qemu-system-x86_64 with the vgpu-stub device
#   KERNEL          the vmlinux ELF (PVH boot)
#   INITRAMFS       from make-initramfs.sh, holding every EXAMPLE by name
#   EXAMPLE         the host paths of the programs: run natively from here,
#                   and by their names in the guest (/opt/vgpu/bin)
#
# Environment:
#   VGPU_VM_TIMEOUT     seconds a guest may take, boot to power-off (600)
#   VGPU_E2E_TIMEOUT    seconds per program, native and in the guest (120)
#   VGPU_E2E_LOG_LEVEL  the server's --log-level (default info: the test
#                       reads the identity each device announced, and the
#                       sessions it got, from the server's log; with error
#                       or warn that check is left out)
#   VGPU_VM_ACCEL       QEMU accelerator (tcg; kvm where /dev/kvm is usable)
#   VGPU_VM_MEM         guest memory (1G; more for NVIDIA's libraries in the initramfs)
#   VGPU_VM_APPEND      more kernel command line words; NAME=VALUE words
#                       reach the programs' environment (e.g. VGPU_LOG=debug)
#   VGPU_VM_QEMU_ARGS   more QEMU arguments (word-split)
#
# Everything goes under WORKDIR: native/NAME.out|err, guestG/ (console.log,
# qemu.err, I-NAME.out|err, results), server.log, cache/.
# Exit: 0 all match, 1 a difference or a broken setup, 77 skipped (no QEMU
# binary or no kernel).
set -u
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"

guests=1
fw_dirs=
shared_bar=
fake_runtime=
expected=
restart_at=
stderr_has=
flat_rss=
while [ $# -gt 0 ]; do
    case "$1" in
    --guests) [ $# -ge 2 ] || { echo "run_vm.sh: --guests needs a number" >&2; exit 1; }
        guests=$2; shift 2 ;;
    --firmware) [ $# -ge 2 ] || { echo "run_vm.sh: --firmware needs a directory" >&2; exit 1; }
        fw_dirs="$fw_dirs $2"; shift 2 ;;
    --shared-bar) [ $# -ge 2 ] || { echo "run_vm.sh: --shared-bar needs a size" >&2; exit 1; }
        shared_bar=$2; shift 2 ;;
    --fake-runtime) [ $# -ge 2 ] || { echo "run_vm.sh: --fake-runtime needs a directory" >&2; exit 1; }
        fake_runtime=$2; shift 2 ;;
    --expected) [ $# -ge 2 ] || { echo "run_vm.sh: --expected needs a directory" >&2; exit 1; }
        expected=$2; shift 2 ;;
    --restart-server-at) [ $# -ge 2 ] || { echo "run_vm.sh: --restart-server-at needs a text" >&2; exit 1; }
        restart_at=$2; shift 2 ;;
    --flat-rss) [ $# -ge 2 ] || { echo "run_vm.sh: --flat-rss needs a bound in KiB" >&2; exit 1; }
        flat_rss=$2; shift 2 ;;
    --stderr-has) [ $# -ge 3 ] || { echo "run_vm.sh: --stderr-has needs a program and a text" >&2; exit 1; }
        stderr_has="$stderr_has$2	$3
"; shift 3 ;;
    --) shift; break ;;
    -*) echo "run_vm.sh: unknown option $1" >&2; exit 1 ;;
    *) break ;;
    esac
done
if [ $# -lt 7 ]; then
    echo "usage: run_vm.sh [--guests N] [--firmware DIR]... [--shared-bar SIZE] [--fake-runtime DIR]" \
         "[--expected DIR] [--restart-server-at TEXT] [--stderr-has PROGRAM TEXT]... [--flat-rss KIB]" \
         "NAME QEMU KERNEL INITRAMFS SERVER_BIN WORKDIR EXAMPLE..." >&2
    exit 1
fi
name=$1 qemu=$2 kernel=$3 initramfs=$4 server=$5 work=$6
shift 6
vm_timeout=${VGPU_VM_TIMEOUT:-600}
run_timeout=${VGPU_E2E_TIMEOUT:-120}
accel=${VGPU_VM_ACCEL:-tcg}

fail() {
    echo "$name: $*" >&2
    exit 1
}

case $guests in
'' | *[!0-9]* | 0) fail "--guests must be a positive number" ;;
esac
case $flat_rss in
*[!0-9]*) fail "--flat-rss must be a number of KiB" ;;
esac
# the second server's memory says nothing of the first's
[ -n "$flat_rss" ] && [ -n "$restart_at" ] && fail "--flat-rss and --restart-server-at do not go together"
if [ ! -x "$qemu" ]; then
    echo "$name: no QEMU binary at '$qemu' (build the vgpu-stub QEMU, or set VGPU_QEMU_BINARY), skipped"
    exit 77
fi
if [ ! -f "$kernel" ]; then
    echo "$name: no guest kernel at '$kernel' (build the vm artifacts first), skipped"
    exit 77
fi
[ -f "$initramfs" ] || fail "initramfs $initramfs is missing; build it first"
[ -x "$server" ] || fail "server $server is missing; build it first"
for ex in "$@"; do
    [ -x "$ex" ] || fail "example $ex is missing; build it first"
done
if ! "$qemu" -device help 2>/dev/null | grep -q '"vgpu-stub"'; then
    fail "$qemu has no vgpu-stub device"
fi
if [ -z "$fw_dirs" ]; then
    for d in /usr/share/seabios /usr/share/qemu /usr/lib/ipxe/qemu; do
        [ -d "$d" ] && fw_dirs="$fw_dirs $d"
    done
fi

mkdir -p "$work" || fail "cannot create $work"
work=$(cd "$work" && pwd -P)
rm -rf "$work/cache" "$work/native" "$work"/guest* "$work"/server*.log "$work/vgpu.sock"
mkdir -p "$work/native" "$work/cache"

# A unix socket path must fit in sun_path (108 bytes): deep build trees get
# the socket in a private directory under /tmp instead.
sock=$work/vgpu.sock
sockdir=
if [ ${#sock} -gt 100 ]; then
    sockdir=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-vm.XXXXXX") || fail "mktemp failed"
    sock=$sockdir/vgpu.sock
fi

server_pid=
qemu_pids=
# shellcheck disable=SC2317 # called through the trap
cleanup() {
    for p in $qemu_pids; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in $qemu_pids; do
        wait "$p" 2>/dev/null
    done
    qemu_pids=
    stop_server
    if [ -n "$sockdir" ]; then
        rm -rf "$sockdir"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

now() {
    date +%s.%N
}
elapsed() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'
}

# --- native runs ------------------------------------------------------------
# The same binaries with the host's real CUDA runtime, as run_diff.sh runs them.
# With --expected, EXPECTED/NAME.txt stands for the native output (exit 0).
for ex in "$@"; do
    n=${ex##*/}
    t0=$(now)
    if [ -n "$expected" ]; then
        cp "$expected/$n.txt" "$work/native/$n.out" || fail "no $expected/$n.txt"
        : >"$work/native/$n.err"
        echo 0 >"$work/native/$n.rc"
    else
        env -u LD_PRELOAD -u LD_LIBRARY_PATH -u VGPU_SERVER \
            timeout "$run_timeout" "$ex" </dev/null >"$work/native/$n.out" 2>"$work/native/$n.err"
        echo $? >"$work/native/$n.rc"
    fi
    elapsed "$t0" "$(now)" >"$work/native/$n.time"
done

examples="$*"

# --- the server -------------------------------------------------------------
set -- --listen "unix:$sock,type=device" --cache-dir "$work/cache"
log_level=${VGPU_E2E_LOG_LEVEL:-info}
set -- "$@" --log-level "$log_level"
# a process group of its own when it is to be killed whole
[ -n "$restart_at" ] && server_wrap=setsid
start_server "$fake_runtime" "$@"
rss() {
    awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"
}
[ -z "$flat_rss" ] || rss_before=$(rss "$server_pid")

# --- the guests -------------------------------------------------------------
run_list=
for ex in $examples; do
    run_list="$run_list${run_list:+,}${ex##*/}"
done
fw_args=
for d in $fw_dirs; do
    fw_args="$fw_args -L $d"
done

t_start=$(now)
g=1
while [ "$g" -le "$guests" ]; do
    case $g in
    1) prio=2 prio_name=high ;;
    2) prio=0 prio_name=low ;;
    *) prio=1 prio_name=medium ;;
    esac
    gdir=$work/guest$g
    mkdir -p "$gdir"
    echo "$prio" >"$gdir/priority"
    mem_args=
    dev_mem=
    if [ -n "$shared_bar" ]; then
        mem_args="-object memory-backend-memfd,id=vgpumem,size=$shared_bar,share=on"
        dev_mem=",memdev=vgpumem"
    fi
    # shellcheck disable=SC2086 # fw_args, mem_args and VGPU_VM_QEMU_ARGS are word lists
    timeout -k 10 "$vm_timeout" "$qemu" $mem_args \
        -M q35 -accel "$accel" -cpu max -smp 1 -m "${VGPU_VM_MEM:-1G}" \
        -nographic -no-reboot -nic none $fw_args \
        -kernel "$kernel" -initrd "$initramfs" \
        -append "console=ttyS0 quiet panic=-1 cryptomgr.notests no_timer_check vgpu_run=$run_list vgpu_timeout=$run_timeout VGPU_TEST_GUEST=$g ${VGPU_VM_APPEND:-}" \
        -chardev "socket,id=vgpu0,path=$sock,reconnect=1" \
        -device "vgpu-stub,chardev=vgpu0,vm-id=$g,pool-id=A,priority=$prio_name$dev_mem" \
        ${VGPU_VM_QEMU_ARGS:-} \
        </dev/null >"$gdir/console.log" 2>"$gdir/qemu.err" &
    qemu_pids="$qemu_pids $!"
    echo "$!" >"$gdir/pid"
    g=$((g + 1))
done

# The server killed and started again under running guests.
if [ -n "$restart_at" ]; then
    i=0
    while ! grep -qF -- "$restart_at" "$work/server.log"; do
        [ "$i" -lt $((vm_timeout * 10)) ] || fail "the server's log never had '$restart_at'"
        sleep 0.1
        i=$((i + 1))
    done
    sleep 1
    kill -KILL "-$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=
    # the dead server's socket file would pass start_server's wait at once
    rm -f "$sock" "$sock.admin"
    mv "$work/server.log" "$work/server.before-restart.log"
    echo "$name: server killed (its process group) on '$restart_at'; a new one starts"
    start_server "$fake_runtime" "$@"
fi

# Wait for each guest and note how long it took.
g=1
for p in $qemu_pids; do
    wait "$p"
    echo $? >"$work/guest$g/qemu.rc"
    elapsed "$t_start" "$(now)" >"$work/guest$g/wall"
    g=$((g + 1))
done
qemu_pids=
t_guests=$(elapsed "$t_start" "$(now)")

# --- the server afterwards ---------------------------------------------------
# Every guest powered off: each link process (one per QEMU) ends its
# sessions and itself, and the main process holds what it held before.
rss_problems=
if [ -n "$flat_rss" ]; then
    i=0
    while [ -n "$(pgrep -P "$server_pid")" ] && [ "$i" -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    left=$(pgrep -P "$server_pid" | tr '\n' ' ')
    [ -z "$left" ] || rss_problems="$rss_problems processes of the server still run 5 s after the last guest: $(ps -o pid=,args= -p "${left% }" 2>/dev/null | tr '\n' ';')"
    ctl=$(dirname "$server")/vgpuctl
    if "$ctl" --admin "$sock.admin" --json >"$work/vgpuctl.json" 2>"$work/vgpuctl.err"; then
        # (a server before vgpuctl listed device links has no "links")
        python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(len(j["sessions"]) + len(j.get("links", [])) > 0)' "$work/vgpuctl.json" ||
            rss_problems="$rss_problems vgpuctl still shows sessions or device links: $(cat "$work/vgpuctl.json");"
    else
        rss_problems="$rss_problems vgpuctl failed: $(cat "$work/vgpuctl.err");"
    fi
    rss_after=$(rss "$server_pid")
    [ $((rss_after - rss_before)) -le "$flat_rss" ] ||
        rss_problems="$rss_problems the server's main process grew by $((rss_after - rss_before)) KiB (at most $flat_rss);"
fi

# --- compare ----------------------------------------------------------------
# After a restart both servers' logs count, the first one's first.
if [ -f "$work/server.before-restart.log" ]; then
    cat "$work/server.before-restart.log" "$work/server.log" >"$work/server.both.log" &&
        mv "$work/server.both.log" "$work/server.log"
fi
# shellcheck source-path=SCRIPTDIR source=console.sh
. "$(dirname "$0")/console.sh"

show() {
    echo "----- $1 -----"
    if [ -s "$2" ]; then cat "$2"; else echo "(empty)"; fi
}

status=0
summary=
if [ -n "$flat_rss" ]; then
    summary="
$guests guest(s) in $t_guests s; server main process ${rss_before} KiB before the guests, ${rss_after:-?} KiB after"
    if [ -n "$rss_problems" ]; then
        echo "$name: the server afterwards:$rss_problems" >&2
        status=1
    fi
fi
g=1
while [ "$g" -le "$guests" ]; do
    gdir=$work/guest$g
    prio=$(cat "$gdir/priority")
    qrc=$(cat "$gdir/qemu.rc")
    : >"$gdir/results"
    parse_console "$gdir"
    boot=$(sed -n 's/.*up \([0-9.]*\) s.*/\1/p' "$gdir/boot" 2>/dev/null)
    summary="$summary
guest $g (vm_id $g, priority $prio): QEMU $(cat "$gdir/wall") s, /init reached at ${boot:-?} s of guest time"
    problems=
    [ "$qrc" != 124 ] && [ "$qrc" != 137 ] || problems="$problems QEMU timed out after ${vm_timeout}s;"
    [ "$qrc" = 0 ] || [ "$qrc" = 124 ] || [ "$qrc" = 137 ] || problems="$problems QEMU exited with status $qrc;"
    grep -q 'vgpu-guest: vgpu-stub at' "$gdir/console.log" || problems="$problems the guest saw no vgpu-stub PCI device;"
    grep -q 'vgpu-guest: done' "$gdir/console.log" || problems="$problems the guest did not finish its list;"
    if [ -n "$shared_bar" ]; then
        grep -q "vm $g: shared BAR of" "$work/server.log" ||
            problems="$problems the server did not map guest $g's shared BAR;"
        grep -q "vm $g: shared BAR slot at" "$work/server.log" ||
            problems="$problems no program of guest $g staged its copies in the shared BAR;"
        grep -q "vm $g: .* doorbell(s) for queue pairs" "$work/server.log" ||
            problems="$problems the server got no doorbells for guest $g's queue pairs;"
        grep -q "vm $g: queue pair in the shared BAR slot at" "$work/server.log" ||
            problems="$problems no program of guest $g used a queue pair in the shared BAR;"
        grep -q "frames through the queue pair" "$work/server.log" &&
            ! grep -q "(0 frames through the queue pair" "$work/server.log" ||
            problems="$problems a session of guest $g served no frame from its queue pair;"
    fi
    i=0
    for ex in $examples; do
        i=$((i + 1))
        n=${ex##*/}
        line=$(awk -v i="$i" '$1 == i' "$gdir/results")
        nrc=$(cat "$work/native/$n.rc")
        if [ -z "$line" ]; then
            problems="$problems $n: no result from the guest;"
            summary="$summary
  $n: no result (native exit $nrc)"
            continue
        fi
        # shellcheck disable=SC2086
        set -- $line
        grc=$3 gtime=$4
        summary="$summary
  $n: guest exit $grc in $gtime s, native exit $nrc in $(cat "$work/native/$n.time") s"
        bad=
        [ "$2" = "$n" ] || bad="$bad guest ran $2 in place of $n;"
        [ "$grc" = "$nrc" ] || bad="$bad exit status differs (native $nrc, guest $grc);"
        cmp -s "$work/native/$n.out" "$gdir/$i-$n.out" || bad="$bad stdout differs;"
        while IFS='	' read -r sp st; do
            st=$(printf '%s' "$st" | sed "s/%g/$g/g")
            [ "$sp" = "$n" ] && ! grep -qF -- "$st" "$gdir/$i-$n.err" &&
                bad="$bad its stderr lacks '$st';"
        done <<EOF_HAS
$stderr_has
EOF_HAS
        [ "$nrc" != 124 ] || bad="$bad native run timed out after ${run_timeout}s;"
        [ "$grc" != 124 ] && [ "$grc" != 143 ] || bad="$bad guest run timed out after ${run_timeout}s;"
        if [ -n "$bad" ]; then
            problems="$problems $n:$bad"
            {
                echo "$name: guest $g: $n: MISMATCH:$bad"
                show "native stdout (exit $nrc)" "$work/native/$n.out"
                show "guest $g stdout (exit $grc)" "$gdir/$i-$n.out"
                echo "----- diff -u native guest$g -----"
                diff -u "$work/native/$n.out" "$gdir/$i-$n.out"
                show "native stderr" "$work/native/$n.err"
                show "guest $g stderr" "$gdir/$i-$n.err"
            } >&2
        fi
    done
    # The server must have met this guest's device with the identity QEMU
    # gave it, and served each program in a session of that identity
    # (server/link.c and session.c log both at info).
    case $log_level in
    info | debug)
        grep -q "vgpu-stub link: vm $g, pool A, priority $prio\$" "$work/server.log" ||
            problems="$problems the server log has no 'vgpu-stub link: vm $g, pool A, priority $prio';"
        case $prio in 0) pname=low ;; 2) pname=high ;; *) pname=medium ;; esac
        for ex in $examples; do
            n=${ex##*/}
            grep -q "session for $n (.*), vm $g pool A priority $pname\$" "$work/server.log" ||
                problems="$problems the server log shows no session for $n from vm $g (pool A, priority $prio);"
        done
        ;;
    esac
    if [ -n "$problems" ]; then
        status=1
        {
            echo "$name: guest $g (vm_id $g, priority $prio) FAILED:$problems"
            echo "----- guest $g console, program output left out (last 40 lines, $gdir/console.log) -----"
            tr -d '\r' <"$gdir/console.log" | grep -av -E '^[A-Za-z0-9+/]+=*$' | tail -n 40
            show "guest $g QEMU stderr" "$gdir/qemu.err"
        } >&2
    fi
    g=$((g + 1))
done

if [ "$status" != 0 ]; then
    {
        echo "----- server log (last 50 lines) -----"
        tail -n 50 "$work/server.log"
        echo "$name: FAILED$summary"
    } >&2
    exit 1
fi
echo "$name: $guests guest(s), every program matches its native run$summary"
exit 0
