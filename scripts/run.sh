#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The first run: build only what it takes, start a vgpu-server on a private
# socket and run a CUDA program through vgpu, then stop the server.
#
#   scripts/run.sh [PROGRAM [ARGS...]]
#       host-direct: the program (vector_add by default) with vgpu's
#       libcudart.so.13 in place of NVIDIA's, talking to the server over a
#       unix socket.  Builds vgpu-server, the shim and vector_add in
#       build/run (about a minute on two cores once the packages are there).
#   scripts/run.sh --guest
#       vector_add inside a virtual machine: QEMU (built from Debian's
#       source with the vgpu-stub device, several minutes the first time),
#       Debian's kernel and a busybox initramfs with the shim, under TCG;
#       the program reaches the server through the device and its shared
#       BAR.  Its output is compared with a native run on this machine.
#
# Without a GPU the program fails exactly as it fails natively here (the
# server's CUDA runtime answers, e.g. cudaErrorInsufficientDriver or
# cudaErrorNoDevice); on a GPU host it runs on the GPU.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
guest=
if [ "${1:-}" = --guest ]; then
    guest=1
    shift
fi
build=$top/build/run${guest:+-guest}
jobs=$(nproc)
step() { printf 'run.sh: %s\n' "$*" >&2; }

# Builds TARGETS in $build, showing the percentage as it goes; the log on failure.
build_targets() {
    log=$build/build.log
    # shellcheck disable=SC2086
    if ! cmake --build "$build" -j"$jobs" --target "$@" > "$log" 2>&1; then
        tail -n 40 "$log" >&2
        step "the build failed (whole log: $log)"
        exit 1
    fi
}
progress_build() {
    build_targets "$@" &
    pid=$!
    last=
    while kill -0 "$pid" 2>/dev/null; do
        pct=$(sed -n 's/^\[ *\([0-9]*\)%\].*/\1/p' "$build/build.log" 2>/dev/null | tail -n 1)
        if [ -n "$pct" ] && [ "$pct" != "$last" ]; then
            printf '\rrun.sh: building %s%%' "$pct" >&2
            last=$pct
        fi
        sleep 1
    done
    [ -z "$last" ] || printf '\n' >&2
    wait "$pid"
}

start=$(date +%s)
step "packages (scripts/setup-deps.sh)"
"$top/scripts/setup-deps.sh" >&2
step "configuring $build"
mkdir -p "$build"
if [ -n "$guest" ]; then
    cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVGPU_QEMU=ON \
        > "$build/configure.log" 2>&1 || { tail -n 30 "$build/configure.log" >&2; exit 1; }
    step "building vgpu-server, the guest libraries, vector_add and QEMU with the vgpu-stub device ($jobs jobs; QEMU takes minutes the first time)"
    progress_build vgpu-server vgpu_shim example_vector_add vgpu-qemu
else
    cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVGPU_BUILD_TESTS=OFF \
        -DVGPU_QEMU=OFF > "$build/configure.log" 2>&1 || { tail -n 30 "$build/configure.log" >&2; exit 1; }
    step "building vgpu-server, the shim and vector_add ($jobs jobs)"
    progress_build vgpu-server vgpu_shim example_vector_add
fi
step "built in $(($(date +%s) - start)) s"

if [ -n "$guest" ]; then
    [ $# -eq 0 ] || { step "--guest runs vector_add only"; exit 2; }
    qemu=$(sed -n 's/^VGPU_QEMU_BINARY:[A-Z]*=//p' "$build/CMakeCache.txt")
    [ -x "$qemu" ] || { step "no QEMU was built (see $build/configure.log)"; exit 1; }
    vm=$build/vm
    mkdir -p "$vm"
    if [ ! -f "$vm/kernel/vmlinux" ]; then
        step "guest kernel: Debian's linux-image-amd64 (apt-get download, once)"
        sh "$top/tests/vm/fetch-kernel.sh" "$vm/kernel" >&2
    fi
    step "guest initramfs: busybox, the shim, vector_add"
    sh "$top/tests/vm/make-initramfs.sh" --busybox "$(command -v busybox)" "$vm/initramfs.cpio.gz" \
        "$build/shim" "$build/examples/vector_add" >&2
    fw=
    for d in /usr/share/seabios /usr/share/qemu /usr/lib/ipxe/qemu; do
        [ -d "$d" ] && fw="$fw --firmware $d"
    done
    # With a GPU the device gets its shared BAR (queue pairs, staged copies), and run_vm.sh
    # checks that the program used it; without one the first call fails before it could.
    bar=
    if nvidia-smi -L > /dev/null 2>&1; then
        bar="--shared-bar 64M"
        step "booting the guest under TCG: vector_add runs in it, through the vgpu-stub device and its shared BAR"
    else
        step "booting the guest under TCG: vector_add runs in it, through the vgpu-stub device (no GPU here: it fails as it does natively)"
    fi
    rc=0
    # shellcheck disable=SC2086 # $fw and $bar are options and their words
    VGPU_E2E_LOG_LEVEL=warn sh "$top/tests/vm/run_vm.sh" $fw $bar run "$qemu" \
        "$vm/kernel/vmlinux" "$vm/initramfs.cpio.gz" "$build/server/vgpu-server" "$vm/work" \
        "$build/examples/vector_add" >&2 || rc=$?
    out=$(ls "$vm"/work/guest1/*vector_add.out 2>/dev/null | head -n 1)
    if [ -n "$out" ]; then
        step "vector_add's output inside the guest ($out):"
        cat "$out"
    fi
    if [ "$rc" -eq 0 ]; then
        step "the guest's output and exit status are the same as a native run on this machine"
    else
        step "the guest run differs from the native one or failed (logs in $vm/work)"
    fi
    exit $rc
fi

[ $# -gt 0 ] || set -- "$build/examples/vector_add"
dir=$(mktemp -d /tmp/vgpu-run.XXXXXX)
"$build/server/vgpu-server" --listen "unix:$dir/vgpu.sock" --cache-dir "$dir/cache" \
    --log-level "${VGPU_SERVER_LOG:-warn}" 2> "$dir/server.log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
i=0
while [ ! -S "$dir/vgpu.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
step "running $* through the shim ($build/shim) and vgpu-server (unix:$dir/vgpu.sock)"
rc=0
VGPU_SERVER="unix:$dir/vgpu.sock" LD_LIBRARY_PATH="$build/shim" "$@" || rc=$?
grep -v ' info: ' "$dir/server.log" | grep . >&2 && step "(above: the server's warnings)"
step "exit status $rc, $(($(date +%s) - start)) s from the start"
exit $rc
