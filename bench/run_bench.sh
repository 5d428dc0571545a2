#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The fast-path benchmark in one run on a GPU host: bench/vgpu_bench natively
# and through each host-direct transport vgpu has, then a table against
# native.  With a guest in the bundle (scripts/gpu-vm-bundle.sh) it also runs
# vgpu_bench_quick (16 MiB copies, fewer repetitions) natively, host-direct
# and inside a TCG guest through the vgpu-stub device: OUTDIR/quick.md.
# Timings go into docs/performance.md by hand; nothing here asserts one.
#   bench/run_bench.sh BUNDLE OUTDIR
# BUNDLE is a folder made by scripts/gpu-bundle.sh.
set -u
bundle=$(cd "$1" && pwd) out=$2
mkdir -p "$out"
cuda_lib=${BENCH_CUDA_LIB:-/usr/local/cuda/lib64}
work=$(mktemp -d /tmp/vgpu-bench.XXXXXX)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid"
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/deps"
cp "$bundle/shim/libprotobuf-c.so.1" "$work/deps/"
env LD_LIBRARY_PATH="$cuda_lib:$work/deps" "$bundle/bin/vgpu-server" \
    --listen "unix:$work/s.sock" --cache-dir "$work/cache" 2> "$out/server.log" &
server_pid=$!
for _ in $(seq 100); do [ -S "$work/s.sock" ] && break; sleep 0.1; done

run() {  # run NAME ENV... : one full benchmark run into $out/NAME.txt
    local name=$1
    shift
    if ! env "$@" timeout 300 "$bundle/bench/vgpu_bench" > "$out/$name.txt" 2> "$out/$name.err"; then
        echo "$name: FAILED ($(tail -n 1 "$out/$name.err"))" >&2
    fi
}
run native LD_LIBRARY_PATH="$cuda_lib"
# host-direct: everything on (batching, shared memory); socket only; neither
run shm VGPU_SERVER="unix:$work/s.sock" LD_LIBRARY_PATH="$bundle/shim"
run socket VGPU_SERVER="unix:$work/s.sock" VGPU_SHM=0 LD_LIBRARY_PATH="$bundle/shim"
run plain VGPU_SERVER="unix:$work/s.sock" VGPU_SHM=0 VGPU_BATCH_US=0 LD_LIBRARY_PATH="$bundle/shim"

echo "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1), $(date -u +%Y-%m-%dT%H:%MZ)" \
    > "$out/gpu.txt"
# the table (and a plot, where gnuplot is) from this one run, as for several
"$(dirname "$0")/summarize.sh" "$out/table.md" "$out/plot.png" "$out" > /dev/null
cat "$out/gpu.txt" "$out/table.md"

# the guest: quick sizes, since the 1 KB window under TCG moves tens of MB/s
if [ -d "$bundle/vm" ] && [ -x "$bundle/bench/vgpu_bench_quick" ]; then
    here=$(cd "$(dirname "$0")/.." && pwd)
    q=$bundle/bench/vgpu_bench_quick
    env LD_LIBRARY_PATH="$cuda_lib" timeout 300 "$q" > "$out/quick_native.txt" 2>&1
    env VGPU_SERVER="unix:$work/s.sock" LD_LIBRARY_PATH="$bundle/shim" timeout 300 "$q" \
        > "$out/quick_shm.txt" 2>&1
    env VGPU_SERVER="unix:$work/s.sock" VGPU_SHM=0 LD_LIBRARY_PATH="$bundle/shim" timeout 300 "$q" \
        > "$out/quick_socket.txt" 2>&1
    "$here/tests/vm/extract-vmlinux.sh" "$bundle/vm/vmlinuz" "$work/vmlinux" > /dev/null 2>&1
    # the guest twice: the 1 KB window alone, and with a shared BAR
    for bar in "" 64M; do
        VGPU_E2E_LOG_LEVEL=warn LD_LIBRARY_PATH="$cuda_lib:$work/deps" "$here/tests/vm/run_vm.sh" \
            --firmware "$bundle/vm/fw/seabios" --firmware "$bundle/vm/fw/qemu" \
            ${bar:+--shared-bar "$bar"} vm_bench "$bundle/vm/qemu-system-x86_64" "$work/vmlinux" \
            "$bundle/vm/initramfs.cpio.gz" "$bundle/bin/vgpu-server" "$work/vm$bar" "$q" \
            > "$out/vm_bench$bar.log" 2>&1
        cp "$work/vm$bar"/guest1/*-vgpu_bench_quick.out "$out/quick_guest${bar:+_bar}.txt" 2>/dev/null
    done
    {
        echo "| measure (quick sizes) | unit | native | shm | socket | guest, 1 KB MMIO (TCG) | guest, shared BAR (TCG) |"
        echo "|---|---|---|---|---|---|---|"
        while read -r m v u; do
            printf '| %s | %s | %s |' "$m" "$u" "$v"
            for t in shm socket guest guest_bar; do
                printf ' %s |' "$(awk -v m="$m" '$1 == m { print $2 }' "$out/quick_$t.txt")"
            done
            echo
        done < "$out/quick_native.txt"
    } > "$out/quick.md"
    cat "$out/quick.md"
fi
