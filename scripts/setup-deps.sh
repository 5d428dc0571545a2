#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Installs every Debian package vgpu needs to build and test (Debian 12).
# Idempotent: packages already present are left as they are.  The CUDA 13
# toolkit itself is expected at /usr/local/cuda (or CUDAToolkit_ROOT).
#
# The vgpu-stub device is built into Debian's own QEMU source, which the
# build fetches with `apt-get source qemu`; that needs deb-src entries for
# the Debian suites already configured, added here once (see
# enable_deb_src below).
set -eu

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# Adds deb-src entries mirroring the machine's Debian deb entries (same
# URIs, suites, components, keys), in a file of our own so the system's
# files stay untouched.  Handles both the deb822 format
# (/etc/apt/sources.list.d/*.sources, Debian 12's default) and one-line
# /etc/apt/sources.list.  Only entries for Debian's archives are mirrored:
# third-party repositories often publish no source indices, and a missing
# index would make `apt-get update` fail.  Does nothing when a deb-src for a
# Debian suite is already configured.  Prints "added" when it changed apt's
# configuration, so the caller knows the package lists need an update.
enable_deb_src() {
    out_sources=/etc/apt/sources.list.d/vgpu-deb-src.sources
    out_list=/etc/apt/sources.list.d/vgpu-deb-src.list
    [ -e "$out_sources" ] || [ -e "$out_list" ] && return 0
    # Already configured by someone else?  (deb822 Types, or one-line deb-src.)
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
             { types = ""; uris = ""; enabled = 1
               for (i = 1; i <= NF; i++) {
                   if ($i ~ /^Types:/) types = $i
                   if ($i ~ /^URIs:/) uris = $i
                   if ($i ~ /^Enabled:[ \t]*no/) enabled = 0
               }
               if (enabled && types ~ /deb-src/ && uris ~ /debian/) found = 1 }
             END { exit !found }' "$f" && return 0
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        grep -Eq '^[[:space:]]*deb-src[[:space:]].*debian' "$f" && return 0
    done

    tmp=$(mktemp)
    # deb822: copy each enabled stanza whose Types has "deb" and whose URIs
    # name a Debian archive, with Types set to deb-src.  Comment lines
    # inside a stanza are dropped.
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
             { deb = 0; debian = 0; enabled = 1
               for (i = 1; i <= NF; i++) {
                   if ($i ~ /^Types:/ && $i ~ /[: \t]deb([ \t]|$)/) deb = 1
                   if ($i ~ /^URIs:/ && $i ~ /debian/) debian = 1
                   if ($i ~ /^Enabled:[ \t]*no/) enabled = 0
               }
               if (!(deb && debian && enabled)) next
               for (i = 1; i <= NF; i++) {
                   if ($i ~ /^#/) continue
                   if ($i ~ /^Types:/) print "Types: deb-src"
                   else print $i
               }
               print "" }' "$f" >>"$tmp"
    done
    if [ -s "$tmp" ]; then
        $SUDO install -m 0644 "$tmp" "$out_sources"
        rm -f "$tmp"
        echo added
        return 0
    fi
    # One-line format: each "deb [opts] URI SUITE COMPONENTS" for a Debian
    # archive becomes the same line starting with deb-src.
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -n -E 's/^[[:space:]]*deb([[:space:]]+.*debian.*)$/deb-src\1/p' "$f" >>"$tmp"
    done
    if [ -s "$tmp" ]; then
        $SUDO install -m 0644 "$tmp" "$out_list"
        rm -f "$tmp"
        echo added
        return 0
    fi
    rm -f "$tmp"
    echo "setup-deps: no Debian apt source found; add a deb-src entry by hand for 'apt-get source qemu'" >&2
}

PACKAGES="
build-essential cmake pkg-config clang
protobuf-c-compiler libprotobuf-c-dev libinih-dev libjson-c-dev
libffi-dev libclang-dev libcmocka-dev libseccomp-dev nettle-dev
libgnutls28-dev gnutls-bin libsystemd-dev
libgl-dev libegl-dev libvdpau-dev
binutils
dpkg-dev ninja-build meson python3
libglib2.0-dev libpcre2-dev libpixman-1-dev zlib1g-dev libfdt-dev
seabios qemu-system-data ipxe-qemu
busybox-static cpio xz-utils
debhelper lintian fakeroot
libvirt-daemon-system libvirt-clients
"
# libgnutls28-dev is the server's TLS (server/tls.c; the shim loads
# libgnutls.so.30 only when it speaks TLS), gnutls-bin's certtool makes the
# TLS test's certificates (tests/tls); libsystemd-dev is sd_notify for the
# server's Type=notify unit.
# The three lines after binutils build the vgpu-stub QEMU (stub-device/):
# dpkg-dev for `apt-get source`, meson and ninja, the libraries of a static
# x86_64-softmmu build (these -dev packages ship the .a files: glib and the
# pcre2 it needs, pixman, zlib, and libfdt, which QEMU 7.2's x86_64 target
# requires), and the firmware the built QEMU loads (SeaBIOS, its data
# files, and iPXE's ROMs for the NIC a machine gets by default).
# Then the VM tests' (tests/vm): a static busybox and cpio for the guest's
# initramfs, xz for unpacking Debian's kernel.  Then what builds and checks
# the Debian packages (scripts/build-debs.sh, debian/), and the last line is
# libvirt, whose libvirtd runs a guest with the device in vm_libvirt
# (tests/libvirt).

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

[ -z "$(enable_deb_src)" ] || echo "setup-deps: enabled deb-src for Debian's archives (for 'apt-get source qemu')"

# The source index may be missing even with deb-src configured (just added,
# or never updated since): then the lists need an update too.
updated=""
if ! apt-cache showsrc qemu 2>/dev/null | grep -q '^Package: qemu$'; then
    $SUDO apt-get update -qq
    updated=1
fi

if [ -n "$missing" ]; then
    echo "setup-deps: installing$missing"
    [ -n "$updated" ] || $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
else
    echo "setup-deps: all packages present"
fi

if [ ! -f "${CUDAToolkit_ROOT:-/usr/local/cuda}/include/cuda_runtime_api.h" ]; then
    echo "setup-deps: no CUDA toolkit at ${CUDAToolkit_ROOT:-/usr/local/cuda}; install CUDA 13 or set CUDAToolkit_ROOT" >&2
    exit 1
fi
