#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Checks of vgpu-codegen that are about its behaviour as a program:
#   check.sh golden CODEGEN SRCDIR WORKDIR     mini API output == golden/
#   check.sh missing-entry CODEGEN SRCDIR WORKDIR
#   check.sh missing-extent CODEGEN SRCDIR WORKDIR
#   check.sh missing-id CODEGEN SRCDIR WORKDIR
#   check.sh regen CODEGEN SRCDIR WORKDIR
#   check.sh cudart COVERAGE LIBCUDART         coverage == libcudart's exports
#   check.sh cuda COVERAGE LIBCUDA             coverage == the stub libcuda.so's exports
set -u
mode=$1
fail() { echo "FAIL: $*" >&2; exit 1; }

case "$mode" in
golden)
    cg=$2 src=$3 work=$4
    rm -rf "$work" && mkdir -p "$work/out"
    (cd "$src" && "$cg" --spec mini.spec --registry mini.ids --out "$work/out" -- -I.) ||
        fail "generator failed on the mini API"
    diff -ru "$src/golden" "$work/out" || fail "generated output differs from tests/codegen/golden (if intended: copy $work/out/* there)"
    ;;
missing-entry)
    cg=$2 src=$3 work=$4
    rm -rf "$work" && mkdir -p "$work"
    # The same API without the annotation miniWrite needs for its void pointers.
    grep -v '^fn miniWrite' "$src/mini.spec" > "$work/mini.spec"
    cp "$src/mini.ids" "$work/mini.ids"
    if (cd "$src" && "$cg" --spec "$work/mini.spec" --registry "$work/mini.ids" --out "$work/out" -- -I.) \
        >"$work/log" 2>&1; then
        fail "a function with no usable default and no spec entry did not fail the build"
    fi
    grep -q "need a spec entry" "$work/log" || fail "no 'need a spec entry' message: $(cat "$work/log")"
    grep -q "miniWrite: dst: void pointer" "$work/log" || fail "miniWrite not named: $(cat "$work/log")"
    ;;
missing-extent)
    cg=$2 src=$3 work=$4
    rm -rf "$work" && mkdir -p "$work"
    cp "$src/mini.ids" "$work/mini.ids"
    # A device address followed by a size, with no extent: never a silent
    # single element.  Once for a 1D span, once for a 2D one.
    sed -e 's/^fn miniWrite    dst:devptr,size=bytes /fn miniWrite    dst:devptr /' \
        -e 's/^fn miniFill2D   dst:devptr,.*/fn miniFill2D   dst:devptr/' "$src/mini.spec" > "$work/mini.spec"
    cmp -s "$src/mini.spec" "$work/mini.spec" && fail "the sed found nothing to remove in mini.spec"
    if (cd "$src" && "$cg" --spec "$work/mini.spec" --registry "$work/mini.ids" --out "$work/out" -- -I.) \
        >"$work/log" 2>&1; then
        fail "a device address followed by a size with no extent did not fail the build"
    fi
    grep -q "miniWrite: dst: device address followed by size bytes but no extent" "$work/log" ||
        fail "miniWrite's dst not named: $(cat "$work/log")"
    grep -q "miniFill2D: dst: device address followed by size pitch but no extent" "$work/log" ||
        fail "miniFill2D's dst not named: $(cat "$work/log")"
    [ ! -e "$work/out/mini_dispatch.c" ] || fail "a dispatch table was written anyway"
    # An extent that names no integer parameter is an error too.
    sed -e 's/^fn miniZero     dst:devptr,size=n\*4/fn miniZero     dst:devptr,size=count/' \
        "$src/mini.spec" > "$work/bad.spec"
    if (cd "$src" && "$cg" --spec "$work/bad.spec" --registry "$work/mini.ids" --out "$work/out2" -- -I.) \
        >"$work/log2" 2>&1; then
        fail "an extent naming no parameter did not fail the build"
    fi
    grep -q "miniZero: dst: size names no parameter 'count'" "$work/log2" ||
        fail "bad extent not named: $(cat "$work/log2")"
    ;;
missing-id)
    cg=$2 src=$3 work=$4
    rm -rf "$work" && mkdir -p "$work"
    grep -v ' miniVersion$' "$src/mini.ids" > "$work/mini.ids"
    if (cd "$src" && "$cg" --spec mini.spec --registry "$work/mini.ids" --out "$work/out" -- -I.) \
        >"$work/log" 2>&1; then
        fail "a header function without a call id did not fail the build"
    fi
    grep -q "miniVersion" "$work/log" && grep -q "target regen" "$work/log" ||
        fail "message does not name the function and the regen target: $(cat "$work/log")"
    ;;
regen)
    cg=$2 src=$3 work=$4
    rm -rf "$work" && mkdir -p "$work"
    # Drop two functions from the registry, as if the header had gained them.
    grep -v -e ' miniAdd$' -e ' miniWrite$' "$src/mini.ids" > "$work/mini.ids"
    cp "$work/mini.ids" "$work/before.ids"
    (cd "$src" && "$cg" --spec mini.spec --registry "$work/mini.ids" --regen -- -I.) >"$work/log" 2>&1 ||
        fail "regen failed: $(cat "$work/log")"
    grep -q "new: miniAdd" "$work/log" && grep -q "new: miniWrite" "$work/log" || fail "new functions not listed"
    n=$(wc -l < "$work/before.ids")
    head -n "$n" "$work/mini.ids" | cmp -s - "$work/before.ids" || fail "existing ids were rewritten"
    tail -n 2 "$work/mini.ids" > "$work/added"
    last=$(grep -v '^#' "$work/before.ids" | tail -n 1 | cut -d' ' -f1)
    printf '%s miniAdd\n%s miniWrite\n' $((last + 1)) $((last + 2)) | cmp -s - "$work/added" ||
        fail "new ids are not appended after $last: $(cat "$work/added")"
    ;;
cudart|cuda)
    cov=$2 lib=$3
    expect=422
    [ "$mode" = cuda ] && expect=637
    [ -f "$cov" ] || fail "no $cov"
    last=$(tail -n 1 "$cov")
    echo "$last" | grep -Eq '^remoted: [0-9]+ generated, [0-9]+ manual, [0-9]+ unsupported of [0-9]+ functions$' ||
        fail "last line malformed: $last"
    set -- $(echo "$last" | tr -dc '0-9 ' )
    [ $(($1 + $2 + $3)) -eq "$4" ] || fail "counts do not add up: $last"
    [ "$4" -eq "$expect" ] || fail "expected the $expect exported names of $(basename "$lib") (CUDA 13.0), got $4"
    # files of this mode's own: the cudart and cuda checks run at once in one directory
    head -n -1 "$cov" | cut -d' ' -f1 | sort > "$mode.cov.names"
    nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | grep -v '^libcudart' |
        sort -u > "$mode.lib.names"
    diff -u "$mode.lib.names" "$mode.cov.names" ||
        fail "coverage.txt and $lib export different names"
    echo "$last"
    ;;
*)
    fail "unknown mode $mode"
    ;;
esac
echo "ok: $mode"
