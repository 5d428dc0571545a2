#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# PyTorch inside a TCG guest through vgpu-stub, on a GPU host (never run by
# CI): tests/gpu/frameworks/torch_basics.py (elementwise, reductions,
# fp32/bf16/fp16 matmul through cuBLAS, autocast, conv2d through cuDNN, a
# CNN trained for some steps) natively and in the guest, stdout compared
# byte for byte.  The guest has no Python: the host's own interpreter,
# PyTorch and NVIDIA's libraries from its wheels (what a native run of the
# script loaded, tests/vm/python-image.py) go on a disk as a cpio archive
# that the guest's init unpacks (vgpu_unpack=, tests/vm/init.sh), since
# they are several GiB and QEMU loads an initramfs only under 2 GiB; the
# disk's driver (virtio) comes from BUNDLE/vm/modules.  In the guest,
# NVIDIA's runtime from the wheel runs on vgpu's libcuda.so.1.
#   scripts/gpu-vm-torch.sh BUNDLE OUTDIR [SCRIPT [ARG...]]
# SCRIPT defaults to torch_basics.py with 20 training steps; any Python
# script goes the same way (one without PyTorch tries the mechanism on a
# machine without a GPU).  BUNDLE: gpu-vm-bundle.sh's (vm/ with
# vm/modules, busybox) with bin/vgpu-server and shim/ beside.  One line
# per step in OUTDIR/vm-torch.txt, the logs in OUTDIR/vm-torch-logs.tar.gz.
# Environment: VGPU_VM_MEM (default 16G), VGPU_E2E_TIMEOUT (420),
# VGPU_VM_TIMEOUT (540), as run_vm.sh takes them.
set -u
summary="vm-torch.txt"
# shellcheck source=gpu-host.sh
. "$(dirname "$0")/gpu-host.sh"
out=$(cd "$out" && pwd)
shift 2
if [ $# -eq 0 ]; then set -- "$here/tests/gpu/frameworks/torch_basics.py" 20; fi
script=$1 name=$(basename "$1" .py)
shift
args="$*"
work=$(mktemp -d /tmp/vgpu-vmtorch.XXXXXX)
vm=$bundle/vm
say "gpu: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -n 1)"
say "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
"$here/tests/vm/extract-vmlinux.sh" "$vm/vmlinuz" "$work/vmlinux" > "$out/extract.log" 2>&1 ||
    { say "cannot extract vmlinux"; exit 1; }

# The program: a wrapper that runs the script with the host's python3
# natively, and in the guest with the staged interpreter, its own loader
# and libraries, and vgpu's driver library alone (not the runtime shim:
# the wheel's own libcudart runs on it).
prog=$work/prog
mkdir -p "$prog"
cp "$script" "$prog/$name.py"
# shellcheck disable=SC2016,SC1003 # the wrapper's own variables, written as they are
{
    echo '#!/bin/sh'
    echo 'd=/opt/vgpu/python'
    echo 'if [ -x $d/ld.so ]; then'
    echo '    mkdir -p /tmp/vgpu-cuda'
    echo '    for l in libcuda.so.1 libnvidia-ml.so.1 libprotobuf-c.so.1; do'
    echo '        [ -e /opt/vgpu/lib/$l ] && ln -sf /opt/vgpu/lib/$l /tmp/vgpu-cuda/$l'
    echo '    done'
    echo '    . $d/env'
    echo '    PYTHONPATH=$pythonpath exec $d/ld.so --library-path "/tmp/vgpu-cuda:$d/lib:$libdirs:/opt/vgpu/lib" \'
    echo "        \"\$python\" /opt/vgpu/bin/$name.py $args"
    echo 'fi'
    echo "exec python3 \"\$(dirname \"\$0\")/$name.py\" $args"
} > "$prog/$name"
chmod +x "$prog/$name"

start=$(date +%s)
# shellcheck disable=SC2086 # the arguments are words
python3 "$here/tests/vm/python-image.py" record "$work/files.txt" "$prog/$name.py" $args \
    > "$out/record.out" 2> "$out/record.err"
say "recorded what a native run loads: exit $? ($(grep -c '^/' "$work/files.txt") files, $(( $(date +%s) - start )) s)"
stage=$work/stage
python3 "$here/tests/vm/python-image.py" stage "$work/files.txt" "$stage" >> "$summary" 2>&1 ||
    { say "staging failed"; exit 1; }
mkdir -p "$stage/opt/vgpu/bin"
cp "$prog/$name" "$prog/$name.py" "$stage/opt/vgpu/bin/"
(cd "$stage" && find . | "$bundle/busybox" cpio -o -H newc) > "$work/disk.cpio" 2> "$out/cpio.log"
truncate -s %512 "$work/disk.cpio"
say "disk: $(du -h "$work/disk.cpio" | cut -f1) ($(( $(date +%s) - start )) s so far)"
rm -rf "$stage"

# the disk's driver, loaded by the guest's init before it unpacks
"$here/tests/vm/modules-cpio.sh" "$bundle/busybox" "$work/mods.cpio" "$vm/modules"
# the kernel looks for an appended archive at a 4-byte boundary
cp "$vm/initramfs.cpio.gz" "$work/initramfs.cpio"
truncate -s %4 "$work/initramfs.cpio"
cat "$work/mods.cpio" >> "$work/initramfs.cpio"

start=$(date +%s)
VGPU_VM_MEM=${VGPU_VM_MEM:-16G} VGPU_E2E_TIMEOUT=${VGPU_E2E_TIMEOUT:-420} VGPU_VM_TIMEOUT=${VGPU_VM_TIMEOUT:-540} \
VGPU_VM_QEMU_ARGS="-drive file=$work/disk.cpio,format=raw,if=virtio,readonly=on" \
VGPU_VM_APPEND="vgpu_unpack=/dev/vda" \
    "$here/tests/vm/run_vm.sh" --firmware "$vm/fw/seabios" --firmware "$vm/fw/qemu" --shared-bar 64M \
    vm_torch "$vm/qemu-system-x86_64" "$work/vmlinux" "$work/initramfs.cpio" \
    "$bundle/bin/vgpu-server" "$work/run" "$prog/$name" > "$out/vm_torch.log" 2>&1
say "run_vm.sh: exit $? ($(( $(date +%s) - start )) s)"
# run_vm.sh also wants a session named after the program (here it is the
# interpreter's) and staged copies; its verdict is logged, but this
# script's is the comparison: the same stdout and exit status as native
grep -h "FAILED" "$out/vm_torch.log" | head -n 3 >> "$summary"
grep -h "=== vgpu-guest\|=== vgpu-run\|session for\|session ends" "$work"/run/guest1/console.log \
    "$work"/run/server*.log >> "$summary" 2>/dev/null
rc=1
read -r _ _ grc gtime < "$work/run/guest1/results" 2>/dev/null
nrc=$(cat "$work/run/native/$name.rc" 2>/dev/null)
if [ -n "${grc:-}" ] && [ "$grc" = "$nrc" ] && cmp -s "$work/run/native/$name.out" "$work/run/guest1/1-$name.out"; then
    rc=0
    say "$name.py $args in the guest: the same stdout ($(wc -l < "$work/run/native/$name.out") lines) and exit status ($grc) as native, ${gtime:-?} s in the guest"
else
    say "$name.py $args in the guest: DIFFERENT from native (exit ${grc:-none} against $nrc)"
    diff "$work/run/native/$name.out" "$work/run/guest1/1-$name.out" 2>&1 | head -n 20 >> "$summary"
    tail -n 20 "$work/run/guest1/1-$name.err" >> "$summary" 2>/dev/null
fi
tar -czf "$out/vm-torch-logs.tar.gz" -C "$work" --exclude '*.cpio' --exclude vmlinux --exclude cache . 2>/dev/null
rm -rf "$work"
exit $rc
