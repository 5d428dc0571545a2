#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Every libcudart symbol vgpu-server needs at load time must be defined by
# the fake runtime, or a server started on it fails to load.  (Names the
# server resolves by dlsym at run time may be missing: the server answers
# those calls cudaErrorNotSupported.)
#   check_exports.sh SERVER_BIN FAKE_LIB
set -u
server=$1 fake=$2
need=$(nm -D --undefined-only "$server" | awk '$2 ~ /@libcudart\.so\.13$/ { sub(/@.*/, "", $2); print $2 }' | sort -u)
have=$(nm -D --defined-only "$fake" | awk '$3 ~ /@@libcudart\.so\.13$/ { sub(/@.*/, "", $3); print $3 }' | sort -u)
[ -n "$need" ] || { echo "check_exports: $server needs no libcudart.so.13 symbol? (nm failed)" >&2; exit 1; }
missing=$(printf '%s\n' "$need" | while read -r s; do
    printf '%s\n' "$have" | grep -qx "$s" || echo "$s"
done)
if [ -n "$missing" ]; then
    echo "check_exports: the fake runtime $fake lacks symbols vgpu-server needs:" >&2
    printf '%s\n' "$missing" | sed 's/^/  /' >&2
    echo "add them to tests/fakecuda/" >&2
    exit 1
fi
echo "check_exports: all $(printf '%s\n' "$need" | wc -l) libcudart symbols of vgpu-server are defined by the fake"
