#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Makes the firmware path compiled into QEMU (configure-qemu.sh's
# --firmwarepath) work for the binary in its build directory as well.
# QEMU 7.2 run from its build tree looks up every data and firmware
# directory DIR as BUILD/qemu-bundle/DIR (so that an uninstalled QEMU finds
# its own ROMs); this links each such place to the real directory.  A copy
# of the binary outside BUILD has no qemu-bundle beside it and uses DIR
# itself.  A DIR that does not exist yet is linked all the same, so that
# firmware installed after the build is found too.  Idempotent.
#   link-firmware.sh BUILD DIR...
set -eu
build=$1
shift
for dir in "$@"; do
    link="$build/qemu-bundle$dir"
    if [ -d "$link" ] && [ ! -L "$link" ]; then
        continue    # meson installed something there: leave it alone
    fi
    mkdir -p "$(dirname "$link")"
    ln -sfn "$dir" "$link"
done
