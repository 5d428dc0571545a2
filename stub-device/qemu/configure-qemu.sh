#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Configures a QEMU source tree (already patched by patch-qemu.cmake) in
# BUILD for the one binary vgpu needs: a qemu-system-x86_64 with
# TCG and KVM, chardevs and the default devices, and none of the optional
# libraries (no display, audio, user-mode networking, USB passthrough or
# remote block drivers).  Static by default, so the binary runs on any
# x86_64 Linux, a GPU host included, without QEMU's runtime libraries;
# LINK "shared" links glib and the rest dynamically, which a sanitized
# QEMU needs (ASan's runtime cannot go into a static binary).  Starts from
# --without-default-features, which disables every optional feature that
# is not named here, so a -dev package installed on the machine for
# something else never changes what gets built.
#   configure-qemu.sh SRC BUILD CC [EXTRA_CFLAGS [LINK]]
# EXTRA_CFLAGS (VGPU_QEMU_EXTRA_CFLAGS) go to QEMU's compiler and linker
# both: clang's coverage flags for scripts/device-coverage.sh, say.
# Firmware is found at run time in Debian's places (the seabios,
# qemu-system-data and ipxe-qemu packages), so no -L is needed there.
set -eu
src=$(cd "$1" && pwd)
build=$2
cc=$3
extra=${4:-}
link=${5:-static}
case $link in
    static|shared) ;;
    *) echo "configure-qemu: LINK must be static or shared, not '$link'" >&2; exit 2 ;;
esac

# QEMU 7.2's configure runs QEMU's build scripts (tracetool, qapi) with the
# first python3 on PATH and, with the system meson, cannot be told another;
# a pyenv or virtualenv python3 ahead of Debian's would end up in
# build.ninja.  Debian's tools come first.
PATH=/usr/bin:/bin:$PATH
export PATH

mkdir -p "$build"
cd "$build"
# A half-configured tree from an interrupted run confuses meson; start over.
rm -rf meson-private meson-info meson-logs build.ninja config-host.mak

set -- \
    --target-list=x86_64-softmmu \
    --without-default-features \
    --disable-docs \
    --disable-tools \
    --disable-user \
    --disable-werror \
    --disable-install-blobs \
    --enable-kvm \
    --enable-fdt=system \
    --audio-drv-list= \
    --with-git-submodules=ignore \
    --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu \
    --with-pkgversion=vgpu \
    --cc="$cc"
if [ "$link" = static ]; then
    set -- "$@" --static
fi
if [ -n "$extra" ]; then
    set -- "$@" --extra-cflags="$extra" --extra-ldflags="$extra"
fi

echo "configure-qemu: $src/configure $*"
"$src/configure" "$@"
