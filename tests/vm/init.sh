#!/bin/busybox sh
# SPDX-License-Identifier: Apache-2.0
#
# /init of the vgpu test guest (tests/vm/make-initramfs.sh puts it there).
# Runs a list of programs, one after the other, prints what each wrote and
# its exit status on the console, and powers the machine off.
#
# Which programs: `vgpu_run=a,b,c` on the kernel command line (names in
# /opt/vgpu/bin, or absolute paths; no arguments), else the lines of
# /etc/vgpu/run (a command and its arguments per line; # comments).
# `vgpu_timeout=S` bounds each program (default 120 s). Every other
# NAME=VALUE word of the command line the kernel does not know reaches this
# script's environment, and through it the programs' (e.g. VGPU_LOG=debug).
#
# Console protocol (tests/vm/run_vm.sh reads it; bytes are exact because
# they travel base64-encoded, immune to the tty's newline translation):
#   === vgpu-guest: <information> ===
#   === vgpu-run N NAME: stdout (base64) ===
#   <base64 lines>
#   === vgpu-run N NAME: stderr (base64) ===
#   <base64 lines>
#   === vgpu-run N NAME: exit STATUS after SECONDS s ===
#   === vgpu-guest: done ===
# STATUS is the program's exit status (124: killed by the timeout).

/bin/busybox mkdir -p /proc /sys /dev /tmp /bin
/bin/busybox --install -s /bin
export PATH=/opt/vgpu/bin:/bin
mount -t devtmpfs devtmpfs /dev
# The initramfs has no /dev/console node, so the kernel could not give us
# one: take the console now.
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
# Kernel messages would break into the program output: emergencies only.
echo 1 >/proc/sys/kernel/printk

say() {
    echo "=== vgpu-guest: $* ==="
}

halt_now() {
    sync
    poweroff -f
    # Not reached unless power-off failed.
    echo o >/proc/sysrq-trigger
    sleep 5
}

say "kernel $(uname -r), up $(cut -d' ' -f1 /proc/uptime) s"

if [ -f /etc/vgpu/modules ]; then
    while read -r m; do
        [ -n "$m" ] || continue
        insmod "/lib/modules/$m" || say "insmod $m failed"
    done </etc/vgpu/modules
fi

found=0
for d in /sys/bus/pci/devices/*; do
    [ -f "$d/vendor" ] || continue
    if [ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$(cat "$d/device")" = 0x1111 ]; then
        say "vgpu-stub at ${d##*/}"
        found=1
    fi
done
[ "$found" = 1 ] || say "no vgpu-stub device"

list=
timeout_s=120
unpack=
# shellcheck disable=SC2013 # the command line is words, on one line
for w in $(cat /proc/cmdline); do
    case $w in
    vgpu_run=*) list=${w#vgpu_run=} ;;
    vgpu_timeout=*) timeout_s=${w#vgpu_timeout=} ;;
    vgpu_unpack=*) unpack=${w#vgpu_unpack=} ;;
    esac
done

# vgpu_unpack=DEV: a cpio archive (newc) written raw on a disk, unpacked
# over / before anything runs: for files too large for an initramfs, which
# QEMU's x86 loader keeps under 2 GB (scripts/gpu-vm-torch.sh: Python and
# PyTorch with NVIDIA's libraries; the disk's driver is among the modules
# loaded above).
if [ -n "$unpack" ]; then
    tries=0
    while [ ! -b "$unpack" ] && [ $tries -lt 50 ]; do sleep 0.2; tries=$((tries + 1)); done
    if (cd / && cpio -i -d -m -u <"$unpack" 2>/tmp/unpack.err); then
        say "unpacked $unpack, up $(cut -d' ' -f1 /proc/uptime) s"
    else
        say "unpacking $unpack failed: $(tail -n 1 /tmp/unpack.err)"
    fi
fi

if [ -n "$list" ]; then
    echo "$list" | tr ',' '\n' >/tmp/run-list
elif [ -f /etc/vgpu/run ]; then
    grep -v '^[[:space:]]*\(#\|$\)' /etc/vgpu/run >/tmp/run-list
else
    say "nothing to run: no vgpu_run= and no /etc/vgpu/run"
    : >/tmp/run-list
fi

export LD_LIBRARY_PATH=/opt/vgpu/lib
export HOME=/tmp
# the user the programs run as, as on any system (Python's getpass asks)
[ -f /etc/passwd ] || echo 'root:x:0:0:root:/tmp:/bin/sh' >/etc/passwd
[ -f /etc/group ] || echo 'root:x:0:' >/etc/group

now() {
    cut -d' ' -f1 /proc/uptime
}

# No globbing of the command lines.
set -f
i=0
while read -r cmd; do
    [ -n "$cmd" ] || continue
    i=$((i + 1))
    name=${cmd%% *}
    name=${name##*/}
    mkdir -p "/tmp/run$i"
    t0=$(now)
    # shellcheck disable=SC2086 # a command line: words are meant to split
    (cd "/tmp/run$i" && exec timeout "$timeout_s" $cmd) \
        </dev/null >"/tmp/run$i.out" 2>"/tmp/run$i.err"
    rc=$?
    t1=$(now)
    echo "=== vgpu-run $i $name: stdout (base64) ==="
    base64 "/tmp/run$i.out"
    echo "=== vgpu-run $i $name: stderr (base64) ==="
    base64 "/tmp/run$i.err"
    echo "=== vgpu-run $i $name: exit $rc after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s ==="
    rm -rf "/tmp/run$i" "/tmp/run$i.out" "/tmp/run$i.err"
done </tmp/run-list

say "done, up $(now) s"
halt_now
