# SPDX-License-Identifier: Apache-2.0
#
# Sourced by the GPU host's scripts (gpu-check.sh, gpu-sched-check.sh,
# gpu-suite.sh, gpu-vm-suite.sh) with BUNDLE and OUTDIR as $1 and $2 and
# summary set to the summary's file name: sets bundle, out, here (the
# repository), puts the bundle's libprotobuf-c beside the CUDA toolkit's
# libraries on LD_LIBRARY_PATH (a host without the package), empties
# OUTDIR/$summary, and defines say, which prints a line and adds it there.
bundle=$(cd "$1" && pwd) out=$2
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out" "$bundle/shim-deps"
cp "$bundle/shim/libprotobuf-c.so.1" "$bundle/shim-deps/"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$bundle/shim-deps
summary=$out/$summary
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
