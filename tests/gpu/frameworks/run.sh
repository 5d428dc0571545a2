#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Frameworks on the GPU machine: each script here natively, then through
# vgpu (a fresh vgpu-server; only vgpu's libcuda.so.1 and NVML on the
# client's library path), stdout compared byte for byte. The vgpu run must
# not reach the GPU itself: isolated.py checks at its exit that no
# /dev/nvidia* file is open and no other driver library is mapped
# (CUDA_VISIBLE_DEVICES= cannot hide the GPU here: PyTorch reads it and
# then sees no device at all).
#   run.sh SHIM_DIR SERVER_BIN WORKDIR [script ...]
# SHIM_DIR holds vgpu's libcuda.so.1 (and libnvidia-ml.so.1 when built);
# exit 0 when every script agrees, 1 otherwise, 77 without a GPU or python3
# with torch.
set -u
shim=$1 server=$2 work=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || set -- "$here/torch_basics.py" "$here/torch_decode.py" "$here/cupy_basics.py"
if ! nvidia-smi -L >/dev/null 2>&1; then echo "no NVIDIA GPU, skipped"; exit 77; fi
python3 -c "import torch" 2>/dev/null || { echo "no PyTorch for python3, skipped"; exit 77; }
mkdir -p "$work" && work=$(cd "$work" && pwd)
# libcuda.so.1 alone (and NVML's library): not the runtime shim, which
# would stand in for the frameworks' own libcudart
mkdir -p "$work/lib"
for l in libcuda.so.1 libnvidia-ml.so.1 libprotobuf-c.so.1; do
    [ -e "$shim/$l" ] && ln -sf "$(cd "$shim" && pwd)/$l" "$work/lib/$l"
done
sock=$work/vgpu.sock
rm -f "$sock"
"$server" --listen "unix:$sock" --cache-dir "$work/cache" 2> "$work/server.log" &
pid=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
rc=0
for s in "$@"; do
    n=$(basename "$s" .py)
    timeout 600 python3 "$s" > "$work/$n.native.out" 2> "$work/$n.native.err"
    nrc=$?
    VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$work/lib VGPU_ISOLATION_LIBDIR=$(cd "$shim" && pwd -P) \
        timeout 600 python3 "$here/isolated.py" "$s" > "$work/$n.vgpu.out" 2> "$work/$n.vgpu.err"
    vrc=$?
    if ! grep -q "^vgpu isolation: ok" "$work/$n.vgpu.err"; then
        echo "$n: the vgpu run reached the GPU itself or did not finish:"
        grep "^vgpu isolation" "$work/$n.vgpu.err"
        rc=1
    elif [ $nrc = $vrc ] && cmp -s "$work/$n.native.out" "$work/$n.vgpu.out"; then
        echo "$n: native and vgpu agree (exit $nrc)"
    else
        echo "$n: MISMATCH (native exit $nrc, vgpu exit $vrc)"
        diff "$work/$n.native.out" "$work/$n.vgpu.out" | head -20
        tail -5 "$work/$n.vgpu.err"
        rc=1
    fi
done
kill $pid 2>/dev/null; wait $pid 2>/dev/null
exit $rc
