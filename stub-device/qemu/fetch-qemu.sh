#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fetches Debian's QEMU source package into DIR with `apt-get source`
# (dpkg-source unpacks it and applies Debian's patch series) and points
# DIR/tree at the unpacked tree.  Runs once per build tree: a DIR/tree that
# is already there is kept, so a rebuild never downloads again and never
# picks up a newer Debian revision behind the developer's back.
#   fetch-qemu.sh DIR
# Needs deb-src entries for the machine's Debian suites and their package
# lists (scripts/setup-deps.sh adds both) and dpkg-dev.  No network other
# than the apt mirrors is used.
set -eu
dir=$1

if [ -d "$dir/tree" ] && [ -f "$dir/tree/configure" ]; then
    exit 0
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
tmp=$(mktemp -d "$dir/fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# apt drops privileges to _apt for downloads when run as root; _apt cannot
# write into a build tree, so download as the invoking user instead of
# printing a warning about it.
sandbox=""
[ "$(id -u)" -ne 0 ] || sandbox="-o APT::Sandbox::User=root"

echo "fetch-qemu: apt-get source qemu into $dir"
# shellcheck disable=SC2086
if ! (cd "$tmp" && apt-get source -qq $sandbox --only-source qemu); then
    echo "fetch-qemu: 'apt-get source qemu' failed; run scripts/setup-deps.sh" \
         "(it enables deb-src and updates the package lists)" >&2
    exit 1
fi

unpacked=""
for d in "$tmp"/qemu-*; do
    if [ -d "$d" ] && [ -f "$d/configure" ] && [ -d "$d/debian" ]; then
        unpacked=$d
    fi
done
if [ -z "$unpacked" ]; then
    echo "fetch-qemu: no unpacked QEMU tree in $tmp" >&2
    exit 1
fi

name=$(basename "$unpacked")
rm -rf "${dir:?}/$name"
mv "$unpacked" "$dir/$name"
# Keep the .dsc: it records exactly which Debian revision this tree is.
mv "$tmp"/*.dsc "$dir/" 2>/dev/null || true
ln -sfn "$name" "$dir/tree"
echo "fetch-qemu: $(sed -n 's/^Version: //p' "$dir"/*.dsc 2>/dev/null | head -n 1) in $dir/$name"
