#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# run_install.sh BUILD_DIR WORK
#
# `cmake --install` of the whole build, staged under DESTDIR as a package
# build does (nothing outside the prefix and /etc): every file of both
# components where GNUInstallDirs puts it, the guest libraries under the
# exact names programs load (no development links), their RUNPATH still
# $ORIGIN, the installed binaries answering --version, the example
# configuration valid for the installed server (--check), the unit a
# Type=notify service with ExecReload (and clean for systemd-analyze verify
# where systemd is installed), the man pages clean for groff where it is.
set -u
build=$1 work=$2
fail() {
    echo "install: $*" >&2
    exit 1
}
rm -rf "$work"
mkdir -p "$work"
# staged under DESTDIR, as a package build does: the configured prefix's paths, inside $work
dest=$work/dest
configured=$(sed -n 's/^CMAKE_INSTALL_PREFIX:[A-Z]*=//p' "$build/CMakeCache.txt")
DESTDIR=$dest cmake --install "$build" > "$work/install.log" 2>&1 ||
    fail "cmake --install failed: $(tail -n 20 "$work/install.log")"
prefix=$dest$configured
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$build/CMakeCache.txt")
[ -n "$libdir" ] || libdir=lib
# with prefix /usr the configuration goes to /etc (GNUInstallDirs), else to PREFIX/etc
if [ "$configured" = /usr ]; then etc=$dest/etc; else etc=$prefix/etc; fi
[ -z "$(find "$dest" -path "$dest$configured" -prune -o -path "$dest/etc" -prune -o -type f -print)" ] ||
    fail "files outside the prefix and /etc: $(find "$dest" -type f | grep -v "^$prefix/")"
for f in sbin/vgpu-server sbin/vgpuctl bin/vgpu-codegen \
         "$libdir/vgpu/libcudart.so.13" "$libdir/vgpu/libcuda.so.1" "$libdir/vgpu/libnvidia-ml.so.1" \
         lib/systemd/system/vgpu-server.service lib/sysusers.d/vgpu.conf \
         lib/udev/rules.d/70-vgpu-stub.rules lib/sysusers.d/vgpu-guest.conf \
         share/man/man8/vgpu-server.8 share/man/man8/vgpuctl.8 share/man/man1/vgpu-codegen.1 \
         bin/vgpu-smi share/man/man1/vgpu-smi.1; do
    [ -e "$prefix/$f" ] || fail "$f is not installed"
done
for f in ld.so.conf.d/vgpu-guest.conf vgpu/vgpu-server.conf; do
    [ -e "$etc/$f" ] || fail "$etc/$f is not installed"
done
ls "$prefix/$libdir/vgpu" | grep -qv '\.so\.[0-9]*$' && fail "development links installed: $(ls "$prefix/$libdir/vgpu")"
readelf -d "$prefix/$libdir/vgpu/libcudart.so.13" | grep -q 'RUNPATH.*\[\$ORIGIN\]' ||
    fail "the installed libcudart.so.13 lost its \$ORIGIN runpath"
for b in sbin/vgpu-server sbin/vgpuctl bin/vgpu-codegen; do
    "$prefix/$b" --version | grep -Eq "^$(basename "$b") [0-9]+\.[0-9]+\.[0-9]+$" ||
        fail "$b --version: $("$prefix/$b" --version 2>&1)"
done
"$prefix/sbin/vgpu-server" --config "$etc/vgpu/vgpu-server.conf" --check > "$work/check.log" 2>&1 ||
    grep -q 'no such \(user\|group\)' "$work/check.log" ||
    fail "the example configuration: $(cat "$work/check.log")"
unit=$prefix/lib/systemd/system/vgpu-server.service
grep -q '^Type=notify$' "$unit" || fail "the unit is not Type=notify"
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$unit" || fail "the unit has no ExecReload"
grep -q '^ExecStart=.*/vgpu-server --config .*/vgpu/vgpu-server.conf$' "$unit" || fail "ExecStart: $(grep ExecStart "$unit")"
# (paths in configured files are the configured prefix's: /usr/local/... here)
grep -q "^$configured/$libdir/vgpu\$" "$etc/ld.so.conf.d/vgpu-guest.conf" ||
    fail "the ld.so.conf.d file does not name the guest libraries' directory: $(cat "$etc/ld.so.conf.d/vgpu-guest.conf")"
if command -v systemd-analyze >/dev/null 2>&1; then
    sed "s|^ExecStart=[^ ]*|ExecStart=$prefix/sbin/vgpu-server|" "$unit" > "$work/vgpu-server.service"
    systemd-analyze verify "$work/vgpu-server.service" > "$work/verify.log" 2>&1
    if grep -v "Failed to put bus name\|Cannot determine cgroup\|System has not been booted\|Command 'man " \
            "$work/verify.log" | grep -q .; then
        fail "systemd-analyze verify: $(cat "$work/verify.log")"
    fi
fi
if command -v groff >/dev/null 2>&1; then
    for m in "$prefix"/share/man/man*/*; do
        groff -man -Tutf8 -ww -z "$m" 2> "$work/groff.log"
        [ -s "$work/groff.log" ] && fail "$m: $(cat "$work/groff.log")"
    done
fi
echo "install: $(find "$prefix" -type f | wc -l) files into $prefix; passed"
