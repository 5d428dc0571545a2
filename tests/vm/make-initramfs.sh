#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Builds the initramfs of the vgpu test guest: busybox, tests/vm/init.sh as
# /init, the shim and the programs to run, and every shared library they
# need, taken from this (Debian) host.
#
#   make-initramfs.sh [--busybox PATH] [--module KO]... [--lib PATH]... OUT.cpio[.gz] SHIMDIR PROGRAM...
#
#   OUT        a cpio archive (newc); gzip-compressed when its name ends in .gz
#   SHIMDIR    the directory of the shim's libcudart.so.13
#   PROGRAM    the programs (the examples, built with nvcc -cudart shared),
#              installed in /opt/vgpu/bin; /etc/vgpu/run lists them in this
#              order, each without arguments
#   --busybox  a statically linked busybox (default: $BUSYBOX, else the
#              busybox on PATH; Debian package busybox-static)
#   --module   a kernel module the guest loads with insmod before running
#              anything, in the order given (for a kernel that has something
#              the guest needs only as a module)
#   --lib      a library of this host copied in at its path, for a program
#              added to the image later (scripts/gpu-vm-suite.sh appends
#              programs with NVIDIA's libraries from the GPU host)
#
# Layout in the guest:
#   /opt/vgpu/lib   libcudart.so.13 (the shim), libcuda.so.1 (vgpu's driver
#                   library, when built), libnvidia-ml.so.1 (vgpu's NVML, when
#                   built) and the libraries they
#                   needs beyond glibc (libprotobuf-c.so.1), as the shim's
#                   directory is deployed; /init sets LD_LIBRARY_PATH to it
#   /opt/vgpu/bin   the programs
#   /lib..., /lib64/ld-linux-x86-64.so.2
#                   everything else ldd lists, at the host's paths
# There is no real CUDA runtime in the guest: libcudart.so.13 can only be
# the shim.
set -eu

usage() {
    echo "usage: make-initramfs.sh [--busybox PATH] [--module KO]... [--lib PATH]... OUT.cpio[.gz] SHIMDIR PROGRAM..." >&2
    exit 1
}
die() {
    echo "make-initramfs: $*" >&2
    exit 1
}

here=$(cd "$(dirname "$0")" && pwd -P)
busybox=${BUSYBOX:-}
modules=
extra_libs=
while [ $# -gt 0 ]; do
    case "$1" in
    --busybox) [ $# -ge 2 ] || usage; busybox=$2; shift 2 ;;
    --module) [ $# -ge 2 ] || usage; modules="$modules $2"; shift 2 ;;
    --lib) [ $# -ge 2 ] || usage; extra_libs="$extra_libs $2"; shift 2 ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
    esac
done
[ $# -ge 3 ] || usage
out=$1 shimdir=$2
shift 2

[ -f "$shimdir/libcudart.so.13" ] || die "no libcudart.so.13 in $shimdir; build the shim (vgpu_shim) first"
shimdir=$(cd "$shimdir" && pwd -P)
command -v cpio >/dev/null 2>&1 || die "cpio is not installed (Debian package cpio)"

if [ -z "$busybox" ]; then
    busybox=$(command -v busybox 2>/dev/null) || die "no busybox found: install busybox-static or pass --busybox"
fi
[ -x "$busybox" ] || die "$busybox is not an executable"
# A dynamically linked busybox would need its own libraries at boot.
if LC_ALL=C ldd "$busybox" 2>&1 | grep -q '=>'; then
    die "$busybox is dynamically linked: install busybox-static (or pass --busybox with a static one)"
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/dev" "$stage/proc" "$stage/sys" "$stage/tmp" \
    "$stage/etc/vgpu" "$stage/opt/vgpu/bin" "$stage/opt/vgpu/lib" "$stage/lib/modules"
chmod 1777 "$stage/tmp"
cp "$busybox" "$stage/bin/busybox"
cp "$here/init.sh" "$stage/init"
chmod 755 "$stage/bin/busybox" "$stage/init"
cp -L "$shimdir/libcudart.so.13" "$stage/opt/vgpu/lib/libcudart.so.13"
# vgpu's libcuda.so.1 beside it when built: programs on NVIDIA's static
# runtime and driver-API programs find it through the same LD_LIBRARY_PATH.
if [ -f "$shimdir/libcuda.so.1" ]; then
    cp -L "$shimdir/libcuda.so.1" "$stage/opt/vgpu/lib/libcuda.so.1"
fi
# and vgpu's NVML (docs/nvml.md), for programs that ask it about the GPU.
if [ -f "$shimdir/libnvidia-ml.so.1" ]; then
    cp -L "$shimdir/libnvidia-ml.so.1" "$stage/opt/vgpu/lib/libnvidia-ml.so.1"
fi

# Prints the libraries FILE needs, one absolute path per line, as the
# dynamic linker resolves them with the shim first on the search path.
# Fails on a library that does not resolve.
needed_libs() {
    # ldd prints "name => /path (addr)", "/path (addr)" for the loader,
    # "name (addr)" for the vDSO, and "not a dynamic executable" or
    # "statically linked" for programs that need nothing.
    env -u LD_PRELOAD LD_LIBRARY_PATH="$shimdir" LC_ALL=C ldd "$1" 2>&1 |
        awk -v file="$1" '
            /not a dynamic executable|statically linked/ { next }
            $2 == "=>" && $3 == "not" { print "make-initramfs: " file ": " $1 " not found" > "/dev/stderr"; bad = 1; next }
            $2 == "=>" && $3 ~ /^\// { print $3; next }
            $1 ~ /^\// { print $1; next }
            END { exit bad }'
}

# Copies host library PATH into the image at the same path (dereferenced).
copy_lib() {
    [ -e "$stage$1" ] && return 0
    mkdir -p "$stage$(dirname "$1")"
    cp -L "$1" "$stage$1"
}

is_glibc() {
    case ${1##*/} in
    ld-linux*.so* | libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | libresolv.so.*) return 0 ;;
    esac
    return 1
}

# The shim and its own libraries: beside it (its RUNPATH is $ORIGIN),
# except glibc, which every program shares.
shim_libs=$(needed_libs "$shimdir/libcudart.so.13") || die "the shim's libraries do not all resolve"
if [ -f "$shimdir/libcuda.so.1" ]; then
    more=$(needed_libs "$shimdir/libcuda.so.1") || die "libcuda.so.1's libraries do not all resolve"
    shim_libs="$shim_libs $more"
fi
if [ -f "$shimdir/libnvidia-ml.so.1" ]; then
    more=$(needed_libs "$shimdir/libnvidia-ml.so.1") || die "libnvidia-ml.so.1's libraries do not all resolve"
    shim_libs="$shim_libs $more"
fi
for lib in $shim_libs; do
    if is_glibc "$lib"; then
        copy_lib "$lib"
    else
        cp -L "$lib" "$stage/opt/vgpu/lib/${lib##*/}"
    fi
done

: >"$stage/etc/vgpu/run"
for prog in "$@"; do
    if [ ! -f "$prog" ] || [ ! -x "$prog" ]; then
        die "$prog is not an executable file"
    fi
    name=${prog##*/}
    [ ! -e "$stage/opt/vgpu/bin/$name" ] || die "two programs named $name"
    cp -L "$prog" "$stage/opt/vgpu/bin/$name"
    echo "$name" >>"$stage/etc/vgpu/run"
    libs=$(needed_libs "$prog") || die "the libraries of $prog do not all resolve"
    for lib in $libs; do
        dir=$(cd "$(dirname "$lib")" && pwd -P)
        if [ "${lib##*/}" = libcudart.so.13 ] || [ "${lib##*/}" = libcuda.so.1 ] ||
            [ "${lib##*/}" = libnvidia-ml.so.1 ]; then
            # Natively this would be the real runtime or driver: it must be vgpu's.
            [ "$dir" = "$shimdir" ] ||
                die "$prog: ${lib##*/} resolves to $lib, not into the shim dir $shimdir"
            continue
        fi
        [ "$dir" != "$shimdir" ] || continue
        # The shim's own libraries are already beside it.
        [ ! -e "$stage/opt/vgpu/lib/${lib##*/}" ] || continue
        copy_lib "$lib"
    done
done

for lib in $extra_libs; do
    [ -f "$lib" ] || die "library $lib: no such file"
    copy_lib "$lib"
done

for ko in $modules; do
    [ -f "$ko" ] || die "module $ko: no such file"
    cp "$ko" "$stage/lib/modules/${ko##*/}"
    echo "${ko##*/}" >>"$stage/etc/vgpu/modules"
done

# Reproducible archive: fixed times, owner root, sorted names.
find "$stage" -exec touch -h -d @0 {} +
tmp_out="$out.tmp.$$"
case $out in
*.gz) compress="gzip -n -6" ;;
*) compress="cat" ;;
esac
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --reproducible --quiet | $compress) >"$tmp_out" ||
    { rm -f "$tmp_out"; die "cpio failed"; }
mv "$tmp_out" "$out"
echo "make-initramfs: $out: $(wc -c <"$out") bytes, $# program(s), $(find "$stage" -type f | wc -l) files"
