#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# N guests at once against one vgpu-server, timed (issue 15; never run by
# CI): with a bundle from gpu-bundle.sh plus gpu-vm-bundle.sh given
# PROGRAMs (BUNDLE/bin, BUNDLE/shim, BUNDLE/vm, BUNDLE/vmprogs), N TCG
# guests (vgpu-stub with a 64 MiB shared BAR each, vm_id 1..N) boot at once
# and each runs the PROGRAMs one after another; each program's stdout and
# exit status in each guest must match the same binary run natively
# (tests/vm/run_vm.sh --guests N).  Reported in OUTDIR/vm-guests.txt: the
# wall time of the whole run and of each guest, each guest's programs (same
# or DIFFERENT, with the diff's head), the server's main process's memory
# before the guests and after every link and session ended (run_vm.sh
# --flat-rss: it may grow by KIB at most, 4096 unless --rss-bound says),
# and the server log's error and warn lines.
#   scripts/gpu-vm-guests.sh [--fake-runtime DIR --expected DIR] [--rss-bound KIB]
#                            BUNDLE OUTDIR N [PROGRAM...]
# PROGRAMs are names in BUNDLE/vmprogs (the programs the initramfs holds);
# none: all of them.  load_client (tests/faults) among them checks a pattern
# made from its guest's number, so a reply routed to another guest shows.
# --fake-runtime and --expected go to run_vm.sh (the server on the fake
# runtime, guest output against DIR/NAME.txt): the run on a machine without
# a GPU that checks this script.
# Environment: VGPU_VM_TIMEOUT (seconds a guest may take, 420 here, so a
# run fits a 10-minute lease), VGPU_E2E_TIMEOUT, VGPU_VM_MEM (run_vm.sh's).
set -u
run_opts=()
rss_bound=4096
while [ $# -gt 0 ]; do
    case "$1" in
    --fake-runtime | --expected)
        [ $# -ge 2 ] || { echo "gpu-vm-guests.sh: $1 needs a directory" >&2; exit 1; }
        run_opts+=("$1" "$(cd "$2" && pwd)") || exit 1
        shift 2 ;;
    --rss-bound)
        [ $# -ge 2 ] || { echo "gpu-vm-guests.sh: --rss-bound needs a number of KiB" >&2; exit 1; }
        rss_bound=$2; shift 2 ;;
    -*) echo "gpu-vm-guests.sh: unknown option $1" >&2; exit 1 ;;
    *) break ;;
    esac
done
if [ $# -lt 3 ]; then
    echo "usage: gpu-vm-guests.sh [--fake-runtime DIR --expected DIR] [--rss-bound KIB]" \
         "BUNDLE OUTDIR N [PROGRAM...]" >&2
    exit 1
fi
summary="vm-guests.txt"
# shellcheck source=gpu-host.sh
. "$(dirname "$0")/gpu-host.sh"
guests=$3
shift 3
vm=$bundle/vm
progs=()
if [ $# -gt 0 ]; then
    for p in "$@"; do progs+=("$bundle/vmprogs/$p"); done
else
    progs=("$bundle"/vmprogs/*)
fi
for p in "${progs[@]}"; do
    [ -x "$p" ] || { say "no program $p in the bundle"; exit 1; }
done
work=$(mktemp -d /tmp/vgpu-vmguests.XXXXXX)
"$here/tests/vm/extract-vmlinux.sh" "$vm/vmlinuz" "$work/vmlinux" > "$out/extract.log" 2>&1 ||
    { say "cannot extract vmlinux"; exit 1; }
if command -v nvidia-smi > /dev/null && [ ${#run_opts[@]} -eq 0 ]; then
    say "gpu: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
else
    say "no GPU: ${run_opts[*]}"
fi
say "host: $(nproc) cores, $(awk '/^MemTotal/ { printf "%d GiB", $2 / 1048576 }' /proc/meminfo)"
say "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"

start=$(date +%s.%N)
VGPU_VM_TIMEOUT=${VGPU_VM_TIMEOUT:-420} "$here/tests/vm/run_vm.sh" --guests "$guests" \
    --firmware "$vm/fw/seabios" --firmware "$vm/fw/qemu" --shared-bar 64M \
    --flat-rss "$rss_bound" --stderr-has load_client "load_client: pattern of guest %g," \
    "${run_opts[@]}" vm_guests "$vm/qemu-system-x86_64" "$work/vmlinux" "$vm/initramfs.cpio.gz" \
    "$bundle/bin/vgpu-server" "$work/run" "${progs[@]}" > "$out/vm_guests.log" 2>&1
rc=$?
wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
names=$(basename -a "${progs[@]}" | paste -sd ' ')
against=native
[[ " ${run_opts[*]} " == *" --expected "* ]] && against=expected
say "$guests guests at once, ${#progs[@]} program(s) each ($names), against $against output: run_vm.sh exit $rc, $wall s in all"
# run_vm.sh's line: the guests' time and the server's memory before and after
line=$(grep -m 1 'guest(s) in .* s; server main process' "$out/vm_guests.log")
say "  ${line:-no memory figures (run_vm.sh stopped before the guests ended)}"
# what run_vm.sh found wrong: the server afterwards, and per guest (its log has the rest)
grep -E '^vm_guests: (the server afterwards|guest [0-9]+ \(vm_id .*FAILED)' "$out/vm_guests.log" |
    sed 's/^vm_guests: /  /' | tee -a "$summary"
r=$work/run
same=0 differ=0 missing=0
for ((g = 1; g <= guests; g++)); do
    d=$r/guest$g
    say "  guest $g: QEMU $(cat "$d/wall" 2>/dev/null || echo ?) s, exit $(cat "$d/qemu.rc" 2>/dev/null || echo ?)"
    i=0
    for p in "${progs[@]}"; do
        i=$((i + 1))
        n=${p##*/}
        res=$(awk -v i="$i" '$1 == i { print $3, $4 }' "$d/results" 2>/dev/null)
        if [ -z "$res" ]; then
            missing=$((missing + 1))
            say "    $n: no result"
        elif cmp -s "$r/native/$n.out" "$d/$i-$n.out" && [ "${res%% *}" = "$(cat "$r/native/$n.rc")" ]; then
            same=$((same + 1))
        else
            differ=$((differ + 1))
            say "    $n: DIFFERENT (guest exit ${res%% *}, native $(cat "$r/native/$n.rc"))"
            diff "$r/native/$n.out" "$d/$i-$n.out" | head -n 20 | sed 's/^/      /' >> "$summary"
        fi
    done
done
say "  $same program runs as $against, $differ different, $missing without a result"
errs=$(grep -cE '\] (error|warn):' "$r/server.log" 2>/dev/null)
say "  server log: ${errs:-0} error/warn line(s)$([ "${errs:-0}" -gt 0 ] && echo ':')"
grep -E '\] (error|warn):' "$r/server.log" 2>/dev/null | sed 's/^vgpu-server\[[0-9]*\] //' | sort | uniq -c | sort -rn | head -n 20 |
    sed 's/^/    /' | tee -a "$summary"
tar -czf "$out/vm-guests-logs.tar.gz" -C "$work" --exclude vmlinux run 2>/dev/null
rm -rf "$work"
exit "$rc"
