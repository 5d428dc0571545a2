#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Installs every Debian package vgpu needs to build and test (Debian 12).
# Idempotent: packages already present are left as they are.  The CUDA 13
# toolkit itself is expected at /usr/local/cuda (or CUDAToolkit_ROOT).
set -eu

PACKAGES="
build-essential cmake pkg-config clang
protobuf-c-compiler libprotobuf-c-dev
libffi-dev libclang-dev libcmocka-dev
libgl-dev libegl-dev libvdpau-dev
binutils
"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "setup-deps: installing$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
else
    echo "setup-deps: all packages present"
fi

if [ ! -f "${CUDAToolkit_ROOT:-/usr/local/cuda}/include/cuda_runtime_api.h" ]; then
    echo "setup-deps: no CUDA toolkit at ${CUDAToolkit_ROOT:-/usr/local/cuda}; install CUDA 13 or set CUDAToolkit_ROOT" >&2
    exit 1
fi
