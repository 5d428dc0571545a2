#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Adds to a GPU bundle (gpu-bundle.sh) what a guest run needs: the static
# QEMU with the vgpu-stub device (stripped), the compressed kernel (the GPU
# host extracts vmlinux itself: tests/vm/extract-vmlinux.sh), an initramfs
# holding the shim and libcuda.so.1, the examples (shared and static runtime, driver API but
# for NVRTC's, whose library alone is 100 MiB), the -rdc program, the async and driver tests and
# transport_bench, and
# the firmware QEMU loads.  Sized for a 64 MiB transfer.
#   scripts/gpu-vm-bundle.sh BUILD_DIR BUNDLE_DIR [PROGRAM...]
# With PROGRAMs, the initramfs holds those instead (and they are copied into
# BUNDLE_DIR/vmprogs for the native runs): for a bundle of its own when the
# whole set would not fit, e.g. the conformance programs of tests/.  Programs
# put in BUNDLE_DIR/vmlibprogs beforehand get their libraries but NVIDIA's
# (which gpu-vm-suite.sh adds on the GPU host).  The bundle also gets the
# kernel's virtio disk modules (vm/modules) and a static busybox, for the
# archives the GPU host makes (gpu-vm-suite.sh, gpu-vm-torch.sh).
set -eu
build=$1 out=$2
shift 2
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out/vm/fw"
cp "$build/qemu/qemu-system-x86_64" "$out/vm/"
strip "$out/vm/qemu-system-x86_64"
deb=$(ls "$build"/tests/vm/kernel/linux-image-*.deb | head -n 1)
dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards './boot/vmlinuz-*' > "$out/vm/vmlinuz"
# the kernel's virtio disk driver, for a guest given a disk (gpu-vm-torch.sh)
"$top/tests/vm/virtio-modules.sh" "$deb" "$out/vm/modules"
# a static busybox for the GPU host's archives (its cpio)
cp "${BUSYBOX:-$(command -v busybox)}" "$out/busybox"
if [ $# -gt 0 ]; then
    mkdir -p "$out/vmprogs" && cp "$@" "$out/vmprogs/"
    # programs of BUNDLE_DIR/vmlibprogs come later with the GPU host's NVIDIA libraries
    # (gpu-vm-suite.sh); the rest of what they need comes from here, as for every program
    libs=
    for p in "$out"/vmlibprogs/*; do
        [ -f "$p" ] || continue
        for l in $(ldd "$p" | awk '$3 ~ /^\// && $1 !~ /^lib(cublas|cufft|curand|cusparse|cusolver|nvJitLink|nvrtc)/ { print $3 }'); do
            libs="$libs --lib $l"
        done
    done
    # shellcheck disable=SC2086 # $libs is a list of options
    "$top/tests/vm/make-initramfs.sh" $libs "$out/vm/initramfs.cpio.gz" "$build/shim" "$@" > /dev/null
else
    "$top/tests/vm/make-initramfs.sh" "$out/vm/initramfs.cpio.gz" "$build/shim" \
        "$build"/examples/vector_add "$build"/examples/matrix_mul "$build"/examples/streams_events \
        "$build"/examples/device_query "$build"/examples/pinned_memory "$build"/examples/multi_thread \
        "$build"/examples/kernel_args "$build"/examples/error_handling \
        "$build/tests/gpu/vgpu_rdc" "$build/bench/transport_bench" "$build/bench/vgpu_bench_quick" \
        "$build/tests/async/shared_copies" "$build/tests/async/ring_stress" "$build/tests/async/async_errors" \
        "$build"/examples/*_static "$build"/examples/drv_module_fatbin "$build"/examples/drv_ptx_jit \
        "$build"/examples/drv_params "$build"/examples/drv_streams_events "$build"/examples/drv_context \
        "$build/tests/driver/drv_fill" "$build/tests/driver/static_fill" > /dev/null
fi
cp -r /usr/share/seabios "$out/vm/fw/seabios"
mkdir -p "$out/vm/fw/qemu"
for f in pvh.bin linuxboot.bin linuxboot_dma.bin kvmvapic.bin multiboot.bin multiboot_dma.bin; do
    cp "/usr/share/qemu/$f" "$out/vm/fw/qemu/"
done
mkdir -p "$out/bench" && cp "$build/bench/transport_bench" "$build/bench/vgpu_bench_quick" "$out/bench/"
du -sh "$out"
