#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Builds the Debian packages vgpu-server and vgpu-guest from the tracked
# files of the tree (debian/, dpkg-buildpackage, no network), runs lintian on them (any
# error or warning fails) and checks that each holds what it must.
#   scripts/build-debs.sh [OUTDIR]      (default build/debs)
# The packages land in OUTDIR; the build happens in a copy of the tree there.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build/debs}
# only a directory of its own making is emptied
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -f "$out/.vgpu-debs" ]; then
    echo "build-debs: $out is not empty and not an earlier output of this script; give another" >&2
    exit 1
fi
rm -rf "$out"
mkdir -p "$out/src"
: >"$out/.vgpu-debs"
out=$(cd "$out" && pwd)
# the files git tracks, as the working tree has them, links kept as links (debian/*.sysusers)
(cd "$top" && git ls-files -z | xargs -0 cp -P --parents -t "$out/src")
echo "build-debs: dpkg-buildpackage (log: $out/build.log)"
(cd "$out/src" && dpkg-buildpackage -us -uc -b) > "$out/build.log" 2>&1 || {
    tail -n 40 "$out/build.log" >&2
    echo "build-debs: dpkg-buildpackage failed" >&2
    exit 1
}
changes=$(ls "$out"/vgpu_*_amd64.changes)
echo "build-debs: lintian"
lintian --fail-on error,warning --tag-display-limit 0 "$changes"
fail=0
has() {   # has DEB PATH...: the package holds each path
    deb=$1
    shift
    for p in "$@"; do
        dpkg-deb -c "$deb" | awk '{print $6}' | grep -qx "./$p" ||
            { echo "build-debs: $(basename "$deb") lacks /$p" >&2; fail=1; }
    done
}
has "$out"/vgpu-server_*_amd64.deb usr/sbin/vgpu-server usr/sbin/vgpuctl usr/bin/vgpu-codegen \
    lib/systemd/system/vgpu-server.service usr/lib/sysusers.d/vgpu.conf \
    etc/vgpu/vgpu-server.conf usr/share/man/man8/vgpu-server.8.gz
has "$out"/vgpu-guest_*_amd64.deb usr/lib/x86_64-linux-gnu/vgpu/libcudart.so.13 \
    usr/lib/x86_64-linux-gnu/vgpu/libcuda.so.1 usr/lib/x86_64-linux-gnu/vgpu/libnvidia-ml.so.1 \
    etc/ld.so.conf.d/vgpu-guest.conf usr/lib/udev/rules.d/70-vgpu-stub.rules \
    usr/lib/sysusers.d/vgpu-guest.conf usr/bin/vgpu-smi usr/share/man/man1/vgpu-smi.1.gz
# the server's libcudart.so.13 is NVIDIA's, never a dependency on the guest package
if dpkg-deb -f "$out"/vgpu-server_*_amd64.deb Depends | grep -q vgpu-guest; then
    echo "build-debs: vgpu-server depends on vgpu-guest" >&2
    fail=1
fi
dpkg-deb -I "$out"/vgpu-server_*_amd64.deb postinst | grep -q systemd-sysusers ||
    { echo "build-debs: vgpu-server's postinst does not make its users" >&2; fail=1; }
# the guest's libraries are private: no shlibs entry names them
if dpkg-deb -I "$out"/vgpu-guest_*_amd64.deb shlibs >/dev/null 2>&1; then
    echo "build-debs: vgpu-guest declares shlibs for its private libraries" >&2
    fail=1
fi
dpkg-deb -I "$out"/vgpu-guest_*_amd64.deb triggers | grep -q "activate-noawait ldconfig" ||
    { echo "build-debs: vgpu-guest does not run ldconfig" >&2; fail=1; }
[ $fail = 0 ] || exit 1
rm -rf "$out/src"
echo "build-debs: $(cd "$out" && ls ./*.deb | tr '\n' ' ')lintian clean"
