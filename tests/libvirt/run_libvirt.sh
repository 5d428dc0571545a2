#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# A guest managed by a real libvirtd (Debian's) with the vgpu-stub device:
# the domain of dist/libvirt/vgpu-guest.xml, filled in with this build's
# QEMU, the test kernel and initramfs, is defined, started (TCG), runs
# PROGRAM through the device against a vgpu-server on the host's CUDA
# runtime, and is gone when the guest powers off; the program's output and
# exit status must be those of its native run (NATIVE, the same program, as
# vm_examples runs it: on a machine without a GPU both fail alike), the
# server must have
# served the VM's identity from the domain's command line, and QEMU runs as
# libvirt's user (libvirt-qemu), reaching the server's socket through its
# group (kvm).  Exits 77 (skipped) without root, virsh or libvirtd.
#   run_libvirt.sh QEMU KERNEL INITRAMFS SERVER PROGRAM NATIVE WORK
set -u
qemu=$1 kernel=$2 initramfs=$3 server=$4 program=$5 native=$6 work=$7
name=vm_libvirt
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
fail() {
    echo "$name: FAILED: $*" >&2
    exit 1
}
skip() {
    echo "$name: skipped: $*" >&2
    exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (libvirtd's system instance)"
for t in virsh libvirtd virtlogd; do
    command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] ||
        skip "$t not installed (apt-get install libvirt-daemon-system libvirt-clients)"
done
id libvirt-qemu >/dev/null 2>&1 || skip "no user libvirt-qemu (libvirt-daemon-system makes it)"
PATH=$PATH:/usr/sbin
virsh="virsh -q -c qemu:///system"
rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
work=$(cd "$work" && pwd -P)
# QEMU runs as libvirt-qemu: what it opens lives in a directory it can reach
img=$(mktemp -d /tmp/vgpu-libvirt.XXXXXX)
chmod 755 "$img"
dom=vgpu-test-$$
started=
server_pid=
cleanup() {
    $virsh destroy "$dom" >/dev/null 2>&1
    $virsh undefine "$dom" >/dev/null 2>&1
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    for d in $started; do
        [ -f "$img/$d.pid" ] && kill "$(cat "$img/$d.pid")" 2>/dev/null
    done
    cp "/var/log/libvirt/qemu/$dom.log" "$work/qemu.log" 2>/dev/null
    rm -f "/var/log/libvirt/qemu/$dom.log"
    rm -rf "$img"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# libvirt's daemons, when no service runs them (a CI machine without systemd)
for d in virtlogd libvirtd; do
    sockname=$( [ "$d" = virtlogd ] && echo virtlogd-sock || echo libvirt-sock )
    if [ ! -S "/run/libvirt/$sockname" ]; then
        "$d" -d -p "$img/$d.pid" || fail "$d did not start"
        started="$started $d"
        i=0
        until [ -S "/run/libvirt/$sockname" ]; do
            [ $i -lt 100 ] || fail "$d made no socket in 10 s"
            sleep 0.1
            i=$((i + 1))
        done
    fi
done

# what an earlier run killed before its cleanup left: its domain
for old in $($virsh list --all --name 2>/dev/null | grep '^vgpu-test-'); do
    kill -0 "${old#vgpu-test-}" 2>/dev/null && continue
    $virsh destroy "$old" >/dev/null 2>&1
    $virsh undefine "$old" >/dev/null 2>&1
done

cp "$qemu" "$kernel" "$initramfs" "$img/" || fail "cannot copy the guest's files"
chmod 644 "$img/$(basename "$kernel")" "$img/$(basename "$initramfs")"
cat >"$img/vgpu.conf" <<CONF
[pool A]
gpus = 0

; libvirt's QEMU runs as libvirt-qemu, group kvm
[listen vms]
address = unix:$img/vm.sock
type = device
group = kvm
mode = 0660
CONF
env -u LD_LIBRARY_PATH "$server" --config "$img/vgpu.conf" --cache-dir "$img/cache" \
    --log-level info </dev/null >/dev/null 2>"$work/server.log" &
server_pid=$!
i=0
until [ -S "$img/vm.sock" ]; do
    kill -0 "$server_pid" 2>/dev/null || fail "the server exited: $(tail -n 5 "$work/server.log")"
    [ $i -lt 100 ] || fail "the server made no socket in 10 s"
    sleep 0.1
    i=$((i + 1))
done

prog=$(basename "$program")
sed -e "s|@DOMAIN_TYPE@|qemu|; s|@NAME@|$dom|; s|@VM_ID@|5|" \
    -e "s|@KERNEL@|$img/$(basename "$kernel")|; s|@INITRD@|$img/$(basename "$initramfs")|" \
    -e "s|@CMDLINE@|console=ttyS0 quiet panic=-1 vgpu_run=$prog vgpu_timeout=120|" \
    -e "s|@EMULATOR@|$img/$(basename "$qemu")|; s|@CONSOLE@|$img/console.log|" \
    -e "s|@SOCKET@|$img/vm.sock|" \
    "$top/dist/libvirt/vgpu-guest.xml" >"$work/domain.xml"
$virsh define "$work/domain.xml" >"$work/virsh.log" 2>&1 || fail "virsh define: $(cat "$work/virsh.log")"
$virsh start "$dom" >>"$work/virsh.log" 2>&1 || fail "virsh start: $(cat "$work/virsh.log")"
# QEMU is libvirt's, as its user
pid=$(cat "/run/libvirt/qemu/$dom.pid" 2>/dev/null)
[ -n "$pid" ] && user=$(ps -o user= -p "$pid") && [ "$user" = libvirt-qemu ] ||
    fail "QEMU does not run as libvirt-qemu (pid '${pid:-none}', user '${user:-?}')"
i=0
while [ "$($virsh domstate "$dom" 2>/dev/null)" = running ]; do
    [ $i -lt 3000 ] || fail "the guest still runs after 300 s"
    sleep 0.1
    i=$((i + 1))
done

# the guest's run against the native one
mkdir -p "$work/guest"
cp "$img/console.log" "$work/guest/console.log" 2>/dev/null || fail "no console log"
# shellcheck source-path=SCRIPTDIR source=../vm/console.sh
. "$top/tests/vm/console.sh"
parse_console "$work/guest"
[ -f "$work/guest/results" ] || fail "the guest ran nothing: $(tail -n 20 "$work/guest/console.log")"
read -r _ _ guest_rc _ <"$work/guest/results"
env -u LD_PRELOAD -u LD_LIBRARY_PATH -u VGPU_SERVER timeout 60 "$native" </dev/null >"$work/native.out" 2>"$work/native.err"
native_rc=$?
cmp -s "$work/native.out" "$work/guest/1-$prog.out" ||
    fail "the guest's output differs from the native run: $(diff "$work/native.out" "$work/guest/1-$prog.out" | head -n 10)"
[ "$guest_rc" = "$native_rc" ] || fail "exit status $guest_rc in the guest, $native_rc natively"
grep -q "session for $prog (.*), vm 5 pool A priority high\$" "$work/server.log" ||
    fail "the server served no $prog of vm 5 (pool A, high): $(tail -n 5 "$work/server.log")"
echo "$name: passed: libvirt ran $dom (QEMU as libvirt-qemu), $prog gave the native output" \
     "(exit $guest_rc) through vgpu-stub, vm 5 as the domain says"
