#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The conformance programs inside a TCG guest on a GPU host (never run by CI):
# with a bundle from gpu-bundle.sh plus gpu-vm-bundle.sh given PROGRAMs, each
# program in the guest (vgpu-stub with a 64 MiB shared BAR) against the same
# binary run natively.  Then the programs in BUNDLE/vmlibprogs (NVIDIA's
# libraries on vgpu's libcuda.so.1: lib_blas) in a guest whose initramfs gets
# a second archive made here, with those programs and the GPU host's own
# copies of the NVIDIA libraries they need (too large to carry; busybox's cpio
# from BUNDLE/busybox writes it).  One line per program in OUTDIR/vm-suite.txt.
#   scripts/gpu-vm-suite.sh BUNDLE OUTDIR
set -u
summary=vm-suite.txt
# shellcheck source=gpu-host.sh
. "$(dirname "$0")/gpu-host.sh"
work=$(mktemp -d /tmp/vgpu-vmsuite.XXXXXX)
vm=$bundle/vm
"$here/tests/vm/extract-vmlinux.sh" "$vm/vmlinuz" "$work/vmlinux" > "$out/extract.log" 2>&1 ||
    { say "cannot extract vmlinux"; exit 1; }
say "gpu: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
say "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
progs=("$bundle"/vmprogs/*)
start=$(date +%s)
"$here/tests/vm/run_vm.sh" --firmware "$vm/fw/seabios" --firmware "$vm/fw/qemu" --shared-bar 64M \
    vm_suite "$vm/qemu-system-x86_64" "$work/vmlinux" "$vm/initramfs.cpio.gz" \
    "$bundle/bin/vgpu-server" "$work/one" "${progs[@]}" > "$out/vm_suite.log" 2>&1
say "one guest, shared BAR, ${#progs[@]} programs vs native: exit $? ($(( $(date +%s) - start )) s)"
compare() {   # compare DIR: each guest output against the native one
    for f in "$1"/guest1/*.out; do
        n=$(basename "$f" .out); n=${n#*-}
        if cmp -s "$1/native/$n.out" "$f"; then say "  $n: same stdout"
        else say "  $n: DIFFERENT"; diff "$1/native/$n.out" "$f" | head -n 20 | sed 's/^/    /' >> "$summary"
        fi
    done
}
compare "$work/one"
tail -n 40 "$work/one/server.log" > "$out/server-tail.log" 2>/dev/null
if [ -d "$bundle/vmlibprogs" ]; then
    stage=$work/extra
    mkdir -p "$stage/opt/vgpu/bin" "$stage/opt/vgpu/lib"
    for p in "$bundle"/vmlibprogs/*; do
        cp "$p" "$stage/opt/vgpu/bin/"
        for l in $(ldd "$p" | awk '$3 ~ /^\// && $1 ~ /^lib(cublas|cufft|curand|cusparse|cusolver|nvJitLink|nvrtc)/ { print $3 }'); do
            cp -L "$l" "$stage/opt/vgpu/lib/"
        done
    done
    (cd "$stage" && find . | "$bundle/busybox" cpio -o -H newc) > "$work/extra.cpio" 2> "$out/cpio.log"
    # the kernel looks for an appended archive at a 4-byte boundary
    cp "$vm/initramfs.cpio.gz" "$work/libs.cpio"
    truncate -s %4 "$work/libs.cpio"
    cat "$work/extra.cpio" >> "$work/libs.cpio"
    say "NVIDIA libraries for the guest: $(du -sh "$stage/opt/vgpu/lib" | cut -f1) ($(ls "$stage/opt/vgpu/lib" | tr '\n' ' '))"
    start=$(date +%s)
    VGPU_VM_MEM=3G VGPU_E2E_TIMEOUT=300 VGPU_VM_TIMEOUT=360 "$here/tests/vm/run_vm.sh" \
        --firmware "$vm/fw/seabios" --firmware "$vm/fw/qemu" --shared-bar 64M \
        vm_libs "$vm/qemu-system-x86_64" "$work/vmlinux" "$work/libs.cpio" \
        "$bundle/bin/vgpu-server" "$work/libs" "$bundle"/vmlibprogs/* > "$out/vm_libs.log" 2>&1
    say "one guest, NVIDIA's libraries from the host's files: exit $? ($(( $(date +%s) - start )) s)"
    compare "$work/libs"
fi
tar -czf "$out/vm-logs.tar.gz" -C "$work" --exclude '*.cpio' --exclude vmlinux --exclude extra . 2>/dev/null
rm -rf "$work"
