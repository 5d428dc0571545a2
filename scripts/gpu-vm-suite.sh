#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The conformance programs inside a TCG guest on a GPU host (never run by CI):
# with a bundle from gpu-bundle.sh plus gpu-vm-bundle.sh given PROGRAMs, each
# program in the guest (vgpu-stub with a 64 MiB shared BAR) against the same
# binary run natively.  One line per program in OUTDIR/vm-suite.txt.
#   scripts/gpu-vm-suite.sh BUNDLE OUTDIR
set -u
bundle=$(cd "$1" && pwd) out=$2
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out" "$bundle/shim-deps"
cp "$bundle/shim/libprotobuf-c.so.1" "$bundle/shim-deps/"
export LD_LIBRARY_PATH=$bundle/shim-deps
summary=$out/vm-suite.txt
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
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
for f in "$work"/one/guest1/*.out; do
    n=$(basename "$f" .out); n=${n#*-}
    if cmp -s "$work/one/native/$n.out" "$f"; then say "  $n: same stdout"
    else say "  $n: DIFFERENT"; diff "$work/one/native/$n.out" "$f" | head -n 20 | sed 's/^/    /' >> "$summary"
    fi
done
tail -n 40 "$work/one/server.log" > "$out/server-tail.log" 2>/dev/null
rm -rf "$work"
