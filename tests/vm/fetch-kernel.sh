#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Gets the guest kernel for the VM tests: Debian's kernel package (the one
# linux-image-amd64 depends on) is downloaded with `apt-get download` into
# OUTDIR, never installed; its /boot/vmlinuz-* is unpacked with dpkg-deb
# and turned into an uncompressed vmlinux ELF (extract-vmlinux.sh) that
# QEMU boots through its PVH note.
#
#   fetch-kernel.sh OUTDIR [KERNEL.deb]
#
# With KERNEL.deb (a linux-image-*-amd64 package already at hand), nothing
# is downloaded. Writes OUTDIR/vmlinux, OUTDIR/config (the kernel's
# configuration) and OUTDIR/release (e.g. 6.1.0-56-amd64).
#
# The guest needs these built in, not as modules: they are used before
# /init runs or cannot be modules at all. The script checks the package's
# config and fails naming what is missing.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: fetch-kernel.sh OUTDIR [KERNEL.deb]" >&2
    exit 1
fi
out=$1
deb=${2:-}
here=$(cd "$(dirname "$0")" && pwd -P)

die() {
    echo "fetch-kernel: $*" >&2
    exit 1
}

mkdir -p "$out"
out=$(cd "$out" && pwd -P)

if [ -z "$deb" ]; then
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: pass a linux-image .deb"
    # linux-image-amd64 is a metapackage: the kernel is the package it depends on.
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }')
    [ -n "$pkg" ] || die "apt-cache knows no linux-image-amd64 (run apt-get update?)"
    deb=$(find "$out" -maxdepth 1 -name "${pkg}_*_amd64.deb" | head -n 1)
    if [ -z "$deb" ]; then
        echo "fetch-kernel: downloading $pkg"
        # As root, apt would first try (and fail) to write as the _apt user.
        sandbox=
        [ "$(id -u)" -ne 0 ] || sandbox="-o APT::Sandbox::User=root"
        # shellcheck disable=SC2086
        (cd "$out" && apt-get download -q $sandbox "$pkg") || die "apt-get download $pkg failed"
        deb=$(find "$out" -maxdepth 1 -name "${pkg}_*_amd64.deb" | head -n 1)
        [ -n "$deb" ] || die "apt-get download left no ${pkg}_*.deb in $out"
    fi
fi
[ -f "$deb" ] || die "$deb: no such file"
echo "fetch-kernel: using $deb"

rm -rf "$out/pkg"
mkdir -p "$out/pkg"
# Only /boot: the modules (hundreds of MB unpacked) are not needed.
dpkg-deb --fsys-tarfile "$deb" | (cd "$out/pkg" && tar -x ./boot) ||
    die "$deb has no /boot (not a kernel package?)"
vmlinuz=$(find "$out/pkg/boot" -name 'vmlinuz-*' | head -n 1)
config=$(find "$out/pkg/boot" -name 'config-*' | head -n 1)
[ -n "$vmlinuz" ] || die "$deb has no /boot/vmlinuz-*"
[ -n "$config" ] || die "$deb has no /boot/config-*"
release=${vmlinuz##*/vmlinuz-}

# What the guest needs, and why:
#   PVH                  QEMU's -kernel boot of the ELF
#   BLK_DEV_INITRD RD_GZIP   the initramfs (gzip-compressed)
#   BINFMT_ELF BINFMT_SCRIPT  busybox, the programs, /init itself
#   DEVTMPFS PROC_FS SYSFS TMPFS   /dev, /proc, /sys (the shim finds the
#                        device in sysfs), /tmp
#   PCI PCI_MMCONFIG ACPI    the vgpu-stub device on q35, and power-off
#   SERIAL_8250 SERIAL_8250_CONSOLE   the console on ttyS0
#   UNIX FUTEX SHMEM     what glibc and threaded programs count on
missing=
for opt in PVH BLK_DEV_INITRD RD_GZIP BINFMT_ELF BINFMT_SCRIPT DEVTMPFS PROC_FS SYSFS \
    TMPFS PCI PCI_MMCONFIG ACPI SERIAL_8250 SERIAL_8250_CONSOLE UNIX FUTEX SHMEM; do
    val=$(sed -n "s/^CONFIG_$opt=//p" "$config")
    case $val in
    y) ;;
    m) missing="$missing CONFIG_$opt (a module; needed before /init runs)" ;;
    *) missing="$missing CONFIG_$opt" ;;
    esac
done
[ -z "$missing" ] || die "kernel $release lacks, built in:$missing"

sh "$here/extract-vmlinux.sh" "$vmlinuz" "$out/vmlinux.tmp"
cp "$config" "$out/config"
echo "$release" >"$out/release"
mv "$out/vmlinux.tmp" "$out/vmlinux"
rm -rf "$out/pkg"
echo "fetch-kernel: $out/vmlinux: Linux $release"
