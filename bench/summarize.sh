#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Medians over several runs of bench/run_bench.sh, as a markdown table, and
# a plot of each transport against native (gnuplot, PNG) when gnuplot is
# there.  Each run directory holds native.txt and <transport>.txt.
#   bench/summarize.sh OUT_TABLE.md OUT_PLOT.png RUN_DIR...
set -eu
table=$1 plot=$2
shift 2
transports="shm socket plain"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# median MEASURE FILE_NAME: the median value of MEASURE over the runs (dirs)
median() {
    local m=$1 f=$2 d
    for d in "${dirs[@]}"; do awk -v m="$m" '$1 == m { print $2 }' "$d/$f"; done |
        sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
dirs=("$@")
{
    printf '| measure | unit | native |'
    for t in $transports; do printf ' %s | vs native |' "$t"; done
    printf '\n|---|---|---|'
    for t in $transports; do printf -- '---|---|'; done
    echo
    while read -r m _ u; do
        n=$(median "$m" native.txt)
        printf '| %s | %s | %s |' "$m" "$u" "$n"
        printf '%s' "$m" >> "$tmp/plot.dat"
        for t in $transports; do
            v=$(median "$m" "$t.txt")
            # "vs native": time over native time, or native rate over rate, so
            # 1.00x is native and higher is slower in every row
            r=$(awk -v v="$v" -v n="$n" -v u="$u" 'BEGIN {
                if (v == "" || v == 0 || n == 0) { print "-"; exit }
                printf "%.2f", (u == "us" ? v / n : n / v) }')
            printf ' %s | %sx |' "${v:--}" "$r"
            printf ' %s' "$r" >> "$tmp/plot.dat"
        done
        echo
        echo >> "$tmp/plot.dat"
    done < "${dirs[0]}/native.txt"
} > "$table"
if command -v gnuplot >/dev/null; then
    gnuplot <<GP
set terminal pngcairo size 1000,520 font ",10"
set output "$plot"
set title "vgpu against native, host-direct (time / native time; 1 = native, lower is better)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set yrange [0.3:200]
set ytics (0.5, 1, 2, 5, 10, 20, 50, 100)
set grid ytics
set xtics rotate by -30 noenhanced
set key top right
plot "$tmp/plot.dat" using 2:xtic(1) title "shared memory + batching", \
     "" using 3 title "unix socket + batching", \
     "" using 4 title "unix socket, one call per frame", \
     1 with lines lc rgb "black" notitle
GP
fi
cat "$table"
