#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Writes the vgpu-stub device as one patch for Debian's qemu source package
# (DEP-3 header, -p1, on top of the package's own series), made from this
# tree exactly as the project's build puts the device into QEMU
# (patch-qemu.cmake), and checks that it applies to a fresh unpacking:
#   stub-device/qemu/make-debian-patch.sh OUT.patch
# Then, to build Debian's QEMU with the device (docs/stub-device.md,
# "Debian's qemu package with the device"):
#   apt-get source qemu && cd qemu-*/
#   cp OUT.patch debian/patches/vgpu-stub.patch
#   echo vgpu-stub.patch >> debian/patches/series
#   dch --local +vgpu "Add the vgpu-stub device."
#   dpkg-buildpackage -us -uc -b
# Needs deb-src entries and dpkg-dev (scripts/setup-deps.sh) and cmake.
set -eu
out=$1
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sandbox=""
[ "$(id -u)" -ne 0 ] || sandbox="-o APT::Sandbox::User=root"

# shellcheck disable=SC2086 # $sandbox is an option or nothing
(cd "$tmp" && apt-get source -qq $sandbox --only-source --download-only qemu) ||
    { echo "make-debian-patch: 'apt-get source qemu' failed (scripts/setup-deps.sh enables deb-src)" >&2; exit 1; }
dsc=$(ls "$tmp"/qemu_*.dsc)
version=$(sed -n 's/^Version: //p' "$dsc")
# (its signature is not checked: no keyring here; apt checked the files' hashes)
(cd "$tmp" && dpkg-source -q -x "$dsc" tree >/dev/null 2>&1 && dpkg-source -q -x "$dsc" check >/dev/null 2>&1) ||
    { echo "make-debian-patch: dpkg-source could not unpack $dsc" >&2; exit 1; }
tree=$tmp/tree
# the files the build edits, as Debian's package has them
modified="hw/misc/Kconfig hw/misc/meson.build hw/misc/trace-events tests/qtest/meson.build"
mkdir -p "$tmp/orig"
for f in $modified; do
    mkdir -p "$tmp/orig/$(dirname "$f")"
    cp "$tree/$f" "$tmp/orig/$f"
done
cmake -DQEMU_SRC="$tree" -DSTUB_DIR="$top/stub-device" -DVGPU_INCLUDE="$top/include" \
    -P "$here/patch-qemu.cmake" >/dev/null

{
    cat <<EOF
Description: vgpu-stub, a PCI device (1af4:1111) that carries a VM's CUDA calls to vgpu-server
 The device of the vgpu project: BAR0 carries frames to vgpu-server over a
 socket chardev in 1 KB chunks, an optional shared BAR (a memory backend)
 carries queue pairs and bulk data with ioeventfd doorbells.  Made for
 qemu $version by stub-device/qemu/make-debian-patch.sh from the project's
 tree.
Author: vgpu developers <vgpu-dev@lists.vgpu.invalid>
Forwarded: not-needed
Last-Update: $(date -u +%Y-%m-%d)
---
EOF
    for f in $modified; do
        diff -u --label "a/$f" --label "b/$f" "$tmp/orig/$f" "$tree/$f" || true
    done
    while read -r f; do
        [ -n "$f" ] && diff -u --label /dev/null --label "b/$f" /dev/null "$tree/$f" || true
    done <"$tree/.vgpu-stub-files"
} >"$tmp/vgpu-stub.patch"
# it must apply on its own to the package as Debian unpacks it
(cd "$tmp/check" && patch -p1 --dry-run -s <"$tmp/vgpu-stub.patch") ||
    { echo "make-debian-patch: the patch does not apply to qemu $version" >&2; exit 1; }
cp "$tmp/vgpu-stub.patch" "$out"
echo "make-debian-patch: $out for qemu $version ($(grep -c '^+++ ' "$out") files)"
