#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# vm_disk: a program that reaches the guest only on a disk.  The program is
# copied as disk_NAME into a cpio archive written raw on a virtio disk; the
# guest's init loads the virtio modules (taken from the kernel's package,
# appended to the initramfs) and unpacks the disk over / (vgpu_unpack=,
# init.sh), then runs it through vgpu-stub against the fake runtime, and
# its output must be EXPECTED.  This is the path scripts/gpu-vm-torch.sh
# takes with Python and PyTorch, whose files are too large for an
# initramfs.
#   run_disk.sh KERNEL_DIR BUSYBOX PROGRAM EXPECTED WORKDIR FAKE_DIR QEMU KERNEL INITRAMFS SERVER [--firmware DIR]...
# KERNEL_DIR holds the linux-image .deb (fetch-kernel.sh); without one the
# test is skipped (77).  The initramfs must hold PROGRAM's libraries (the
# VM tests' one holds the programs of vm_shared_bar).
set -eu
kdir=$1 busybox=$2 prog=$3 expected=$4 work=$5 fake=$6 qemu=$7 kernel=$8 initramfs=$9
shift 9
srv=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
deb=$(find "$kdir" -maxdepth 1 -name "linux-image-*.deb" 2>/dev/null | head -n 1)
[ -n "$deb" ] || { echo "run_disk: no linux-image .deb in $kdir (a kernel given as VGPU_VM_KERNEL): skipped"; exit 77; }
rm -rf "$work"
mkdir -p "$work/ko" "$work/disk/opt/vgpu/bin" "$work/expected"
work=$(cd "$work" && pwd)

"$here/virtio-modules.sh" "$deb" "$work/ko"
"$here/modules-cpio.sh" "$busybox" "$work/mods.cpio" "$work/ko"
# the kernel looks for an appended archive at a 4-byte boundary
cp "$initramfs" "$work/initramfs.cpio"
truncate -s %4 "$work/initramfs.cpio"
cat "$work/mods.cpio" >>"$work/initramfs.cpio"

name=disk_$(basename "$prog")
cp "$prog" "$work/disk/opt/vgpu/bin/$name"
cp "$prog" "$work/$name"
cp "$expected" "$work/expected/$name.txt"
(cd "$work/disk" && find . | "$busybox" cpio -o -H newc) >"$work/disk.cpio" 2>/dev/null
truncate -s %512 "$work/disk.cpio"

rc=0
VGPU_VM_QEMU_ARGS="-drive file=$work/disk.cpio,format=raw,if=virtio,readonly=on" \
VGPU_VM_APPEND="vgpu_unpack=/dev/vda" \
    "$here/run_vm.sh" "$@" --shared-bar 64M --fake-runtime "$fake" --expected "$work/expected" \
    vm_disk "$qemu" "$kernel" "$work/initramfs.cpio" "$srv" "$work/run" "$work/$name" || rc=$?
grep -q "unpacked /dev/vda" "$work"/run/guest1/console.log ||
    { echo "run_disk: the guest did not say it unpacked /dev/vda"; rc=1; }
exit $rc
