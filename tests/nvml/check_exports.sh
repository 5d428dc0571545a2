#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# vgpu's libnvidia-ml.so.1 exports exactly the names of codegen/spec/nvml.ids
# (every name NVIDIA's library exports, so that a program or nvidia-smi that
# resolves one finds it), unversioned, and nothing else.
#   check_exports.sh LIBRARY IDS
set -eu
lib=$1 ids=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sort >"$tmp/exported"
awk '{ print $2 }' "$ids" | sort >"$tmp/expected"
if ! diff -u "$tmp/expected" "$tmp/exported"; then
    echo "check_exports: $lib does not export exactly the names of $ids" >&2
    exit 1
fi
if grep -q @ "$tmp/exported"; then
    echo "check_exports: $lib has versioned names; NVIDIA's has none" >&2
    exit 1
fi
echo "check_exports: $(wc -l <"$tmp/exported") names, as $ids lists"
