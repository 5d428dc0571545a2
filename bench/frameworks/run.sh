#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# bench_frameworks.py natively and through vgpu (vgpu's libcuda.so.1 and
# NVML only, a fresh vgpu-server on a unix socket), ROUNDS times each,
# alternating; prints each figure's native and vgpu medians and their ratio.
#   run.sh SHIM_DIR SERVER_BIN WORKDIR [ROUNDS]
set -u
shim=$1 server=$2 work=$3 rounds=${4:-3}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=server.sh
. "$here/server.sh"
r=1
while [ $r -le "$rounds" ]; do
    python3 "$here/bench_frameworks.py" > "$work/native.$r" 2> "$work/native.$r.err"
    VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$work/lib python3 "$here/bench_frameworks.py" \
        > "$work/vgpu.$r" 2> "$work/vgpu.$r.err"
    r=$((r + 1))
done
kill $pid 2>/dev/null; wait $pid 2>/dev/null
# median of each figure over the rounds, native and vgpu, and vgpu/native
python3 - "$work" "$rounds" <<'PY'
import statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def load(kind):
    vals, units = {}, {}
    for r in range(1, rounds + 1):
        for line in open(f"{work}/{kind}.{r}"):
            p = line.split()
            if len(p) == 3:
                vals.setdefault(p[0], []).append(float(p[1])); units[p[0]] = p[2]
    return {k: statistics.median(v) for k, v in vals.items()}, units
n, units = load("native"); v, _ = load("vgpu")
print(f"{'figure':22} {'native':>10} {'vgpu':>10} {'vgpu/native':>12}  unit")
for k in n:
    if k in v:
        print(f"{k:22} {n[k]:10.2f} {v[k]:10.2f} {v[k] / n[k]:12.3f}  {units[k]}")
PY
