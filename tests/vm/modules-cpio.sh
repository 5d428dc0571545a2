#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# An archive (cpio, newc) to append to a guest's initramfs: the kernel
# modules of DIR (virtio-modules.sh) in /lib/modules and /etc/vgpu/modules
# listing them in DIR/load-order, which init.sh loads with insmod before
# anything runs (the virtio disk driver for vgpu_unpack=: run_disk.sh,
# scripts/gpu-vm-torch.sh).
#   modules-cpio.sh BUSYBOX OUT.cpio DIR
set -eu
busybox=$1 out=$2 dir=$3
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib/modules" "$stage/etc/vgpu"
while read -r ko; do
    cp "$dir/$ko" "$stage/lib/modules/"
done <"$dir/load-order"
cp "$dir/load-order" "$stage/etc/vgpu/modules"
(cd "$stage" && find . | "$busybox" cpio -o -H newc) >"$out" 2>/dev/null
