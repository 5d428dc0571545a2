#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# An archive (cpio, newc) to append to a guest's initramfs: kernel modules
# in /lib/modules and /etc/vgpu/modules listing them in the order given,
# which init.sh loads with insmod before anything runs (the virtio disk
# driver for vgpu_unpack=: run_disk.sh, scripts/gpu-vm-torch.sh).
#   modules-cpio.sh BUSYBOX OUT.cpio KO...
set -eu
busybox=$1 out=$2
shift 2
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib/modules" "$stage/etc/vgpu"
for ko in "$@"; do
    cp "$ko" "$stage/lib/modules/"
    echo "${ko##*/}" >>"$stage/etc/vgpu/modules"
done
(cd "$stage" && find . | "$busybox" cpio -o -H newc) >"$out" 2>/dev/null
