#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Turns an x86 bzImage (e.g. Debian's /boot/vmlinuz-*) into the uncompressed
# vmlinux ELF inside it, which QEMU boots directly through its PVH note
# (`-kernel vmlinux`): no real-mode setup, no self-decompression, which is
# what makes a boot under TCG take seconds.
#
#   extract-vmlinux.sh BZIMAGE OUT
#
# How: the bzImage's setup header (boot protocol 2.08 and later) says where
# the compressed kernel lies: it starts payload_offset (0x248) bytes after
# the setup sectors ((setup_sects (0x1f1) + 1) * 512 bytes) and is
# payload_length (0x24c) bytes long, the last 4 of which are the
# uncompressed size (little-endian), appended by the kernel's build. The
# payload's first bytes name its compression (gzip, xz, zstd, lzma, bzip2,
# lz4, lzo); the matching Debian tool decompresses it. When the header is
# missing or does not make sense, every offset where a known magic occurs
# is tried instead, until one decompresses to an ELF image.
#
# Needs: od, dd/head/tail, and the decompressor for the kernel's
# compression (gzip and xz on Debian 12, whose kernels are xz-compressed);
# readelf (binutils), when present, confirms the PVH entry note.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: extract-vmlinux.sh BZIMAGE OUT" >&2
    exit 1
fi
image=$1 out=$2

die() {
    echo "extract-vmlinux: $*" >&2
    exit 1
}

[ -f "$image" ] || die "$image: no such file"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/extract-vmlinux.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Unsigned little-endian integer of SIZE bytes (1 or 4) at byte OFFSET.
le_uint() {
    od -An -v -tu1 -j "$2" -N "$1" "$image" |
        awk '{ for (i = 1; i <= NF; i++) b[n++] = $i }
             END { v = 0; for (i = n - 1; i >= 0; i--) v = v * 256 + b[i]; printf "%d\n", v }'
}

# The bytes of the image from OFFSET (0-based), LENGTH of them (all when empty).
slice() {
    if [ -n "$2" ]; then
        tail -c "+$(($1 + 1))" "$image" | head -c "$2"
    else
        tail -c "+$(($1 + 1))" "$image"
    fi
}

# Name of the compression whose magic starts the file $1, or nothing.
compression_of() {
    sig=$(od -An -v -tx1 -N 6 "$1" | tr -d ' \n')
    case $sig in
    1f8b08*) echo gzip ;;
    fd377a585a00) echo xz ;;
    28b52ffd*) echo zstd ;;
    5d0000*) echo lzma ;;
    425a68*) echo bzip2 ;;
    02214c18*) echo lz4 ;;
    894c5a4f*) echo lzo ;;
    esac
}

# Decompresses stdin ($1 names the format) to stdout. A tool that finds
# bytes after its stream may complain and exit non-zero after writing all
# of it: the caller judges the result by what came out, not by the status.
decompress() {
    case $1 in
    gzip) gzip -dc ;;
    xz) xz -dc --single-stream ;;
    zstd) zstd -dcq ;;
    lzma) xz -dc --format=lzma ;;
    bzip2) bzip2 -dc ;;
    lz4) lz4 -dc ;;
    lzo) lzop -dc ;;
    esac
}

tool_of() {
    case $1 in
    gzip) echo gzip ;; xz | lzma) echo xz ;; zstd) echo zstd ;;
    bzip2) echo bzip2 ;; lz4) echo lz4 ;; lzo) echo lzop ;;
    esac
}

is_elf() {
    [ -s "$1" ] && [ "$(od -An -v -tx1 -N 4 "$1" | tr -d ' \n')" = 7f454c46 ]
}

# 1. The way the boot protocol describes it.
found=
if [ "$(slice 514 4)" = HdrS ]; then
    setup_sects=$(le_uint 1 497)
    [ "$setup_sects" -ne 0 ] || setup_sects=4
    payload_offset=$(le_uint 4 584)
    payload_length=$(le_uint 4 588)
    start=$(((setup_sects + 1) * 512 + payload_offset))
    size=$(wc -c <"$image")
    if [ "$payload_length" -gt 4 ] && [ $((start + payload_length)) -le "$size" ]; then
        slice "$start" "$payload_length" >"$tmp/payload"
        fmt=$(compression_of "$tmp/payload")
        if [ -n "$fmt" ]; then
            command -v "$(tool_of "$fmt")" >/dev/null 2>&1 ||
                die "the kernel is $fmt-compressed and $(tool_of "$fmt") is not installed"
            # Without the trailing size word, so that no tool sees extra bytes.
            head -c "$((payload_length - 4))" "$tmp/payload" | decompress "$fmt" >"$tmp/vmlinux" 2>"$tmp/err" || :
            expected=$(od -An -v -tu1 -j "$((payload_length - 4))" -N 4 "$tmp/payload" |
                awk '{ for (i = 1; i <= NF; i++) b[n++] = $i }
                     END { printf "%d\n", ((b[3] * 256 + b[2]) * 256 + b[1]) * 256 + b[0] }')
            got=$(wc -c <"$tmp/vmlinux")
            if is_elf "$tmp/vmlinux" && [ "$got" -eq "$expected" ]; then
                found="$fmt payload at byte $start, $payload_length bytes, per the setup header"
            else
                echo "extract-vmlinux: the setup header's $fmt payload gave $got bytes, not an ELF of $expected bytes; scanning" >&2
                cat "$tmp/err" >&2
            fi
        fi
    fi
fi

# 2. Otherwise: every known magic, in the order they occur.
if [ -z "$found" ]; then
    LC_ALL=C grep -obUaP '\x1f\x8b\x08|\xfd7zXZ\x00|\x28\xb5\x2f\xfd|\x5d\x00\x00|BZh|\x02\x21\x4c\x18|\x89LZO' "$image" |
        cut -d: -f1 >"$tmp/offsets" || :
    while read -r off; do
        slice "$off" "" >"$tmp/payload"
        fmt=$(compression_of "$tmp/payload")
        [ -n "$fmt" ] || continue
        command -v "$(tool_of "$fmt")" >/dev/null 2>&1 || continue
        decompress "$fmt" <"$tmp/payload" >"$tmp/vmlinux" 2>/dev/null || :
        if is_elf "$tmp/vmlinux"; then
            found="$fmt payload at byte $off, found by its magic"
            break
        fi
    done <"$tmp/offsets"
fi

[ -n "$found" ] || die "$image: no compressed kernel found that decompresses to an ELF image"

if command -v readelf >/dev/null 2>&1; then
    readelf -h "$tmp/vmlinux" >/dev/null 2>&1 || die "$image: the decompressed kernel is not a valid ELF file"
    # XEN_ELFNOTE_PHYS32_ENTRY (18), owner "Xen": the PVH entry point.
    if ! readelf -n "$tmp/vmlinux" 2>/dev/null | grep -Eq 'Xen[[:space:]].*(0x00000012|PHYS32_ENTRY)'; then
        echo "extract-vmlinux: warning: no PVH entry note (Xen, type 18) in the kernel: QEMU cannot boot it with -kernel (CONFIG_PVH)" >&2
    fi
fi

mv "$tmp/vmlinux" "$out"
echo "extract-vmlinux: $out: $(wc -c <"$out") bytes, from the $found"
