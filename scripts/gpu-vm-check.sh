#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The GPU host's half of the guest checks (never run by CI), with a bundle
# from gpu-bundle.sh + gpu-vm-bundle.sh:
#   1. every example and the -rdc program inside a guest (QEMU under TCG,
#      vgpu-stub, mmio transport) against the same binary run natively;
#   2. two guests at once with different vm_id and priority;
#   3. transport_bench natively, over the unix socket, and in the guest.
# Writes logs and vm-summary.txt into OUTDIR.
#   scripts/gpu-vm-check.sh BUNDLE OUTDIR
set -u
bundle=$(cd "$1" && pwd) out=$2
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
mkdir -p "$bundle/shim-deps"
cp "$bundle/shim/libprotobuf-c.so.1" "$bundle/shim-deps/"
export LD_LIBRARY_PATH=$bundle/shim-deps
summary=$out/vm-summary.txt
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
work=$(mktemp -d /tmp/vgpu-vm.XXXXXX)
vm=$bundle/vm
"$here/tests/vm/extract-vmlinux.sh" "$vm/vmlinuz" "$work/vmlinux" > "$out/extract.log" 2>&1 ||
    { say "cannot extract vmlinux"; exit 1; }
say "gpu: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
say "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
fw=(--firmware "$vm/fw/seabios" --firmware "$vm/fw/qemu")
progs=("$bundle"/examples/* "$bundle/tests/vgpu_rdc")

start=$(date +%s)
"$here/tests/vm/run_vm.sh" "${fw[@]}" vm_examples "$vm/qemu-system-x86_64" "$work/vmlinux" \
    "$vm/initramfs.cpio.gz" "$bundle/bin/vgpu-server" "$work/one" "${progs[@]}" > "$out/vm_examples.log" 2>&1
rc=$?
say "one guest, ${#progs[@]} programs vs native: exit $rc ($(( $(date +%s) - start )) s)"
for f in "$work"/one/guest1/*.out; do
    n=$(basename "$f" .out); n=${n#*-}
    if cmp -s "$work/one/native/$n.out" "$f"; then say "  $n: same stdout"; else say "  $n: DIFFERENT"; fi
done
cp "$work/one/guest1/"*-vector_add.out "$out/guest_vector_add.out" 2>/dev/null

start=$(date +%s)
"$here/tests/vm/run_vm.sh" --guests 2 "${fw[@]}" vm_two "$vm/qemu-system-x86_64" "$work/vmlinux" \
    "$vm/initramfs.cpio.gz" "$bundle/bin/vgpu-server" "$work/two" "$bundle/examples/vector_add" \
    "$bundle/examples/matrix_mul" > "$out/vm_two.log" 2>&1
say "two guests (vm 1 high, vm 2 low), vector_add + matrix_mul vs native: exit $? ($(( $(date +%s) - start )) s)"

# transport_bench: guest (its output differs from native by nature: timings)
VGPU_E2E_LOG_LEVEL=warn "$here/tests/vm/run_vm.sh" "${fw[@]}" vm_bench "$vm/qemu-system-x86_64" \
    "$work/vmlinux" "$vm/initramfs.cpio.gz" "$bundle/bin/vgpu-server" "$work/bench" \
    "$bundle/bench/transport_bench" > "$out/vm_bench.log" 2>&1
say "transport_bench native:"; sed 's/^/  /' "$work/bench/native/transport_bench.out" | tee -a "$summary"
say "transport_bench in the guest (1 KB MMIO, TCG):"
sed 's/^/  /' "$work"/bench/guest1/*-transport_bench.out | tee -a "$summary"
sock=$work/s.sock
"$bundle/bin/vgpu-server" --listen "unix:$sock" --cache-dir "$work/c" 2>/dev/null &
srv=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
say "transport_bench over the unix socket:"
VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$bundle/shim "$bundle/bench/transport_bench" | sed 's/^/  /' | tee -a "$summary"
kill $srv; wait $srv
tar -C "$work" -czf "$out/vm-work.tgz" one/guest1 two bench/guest1 2>/dev/null
rm -rf "$work"
