#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The kernel's virtio disk driver, out of its package: the six modules
# virtio_blk needs, into DIR, with DIR/load-order naming them in the order
# insmod must take them (each after what it depends on), for
# modules-cpio.sh (run_disk.sh; gpu-vm-bundle.sh for gpu-vm-torch.sh).
#   virtio-modules.sh KERNEL.deb DIR
set -eu
deb=$1 dir=$2
mkdir -p "$dir"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" --wildcards --transform='s|.*/||' \
    './lib/modules/*/kernel/drivers/virtio/virtio.ko' './lib/modules/*/kernel/drivers/virtio/virtio_ring.ko' \
    './lib/modules/*/kernel/drivers/virtio/virtio_pci.ko' './lib/modules/*/kernel/drivers/virtio/virtio_pci_*_dev.ko' \
    './lib/modules/*/kernel/drivers/block/virtio_blk.ko'
printf '%s\n' virtio_ring.ko virtio.ko virtio_pci_legacy_dev.ko virtio_pci_modern_dev.ko virtio_pci.ko \
    virtio_blk.ko >"$dir/load-order"
