# SPDX-License-Identifier: Apache-2.0
#
# Sourced by run_vm.sh and tests/libvirt/run_libvirt.sh: reading a guest's
# console as tests/vm/init.sh writes it.
# Splits a guest's console log (see tests/vm/init.sh for its format) into
# I-NAME.out/.err and the lines "I NAME STATUS SECONDS" of `results`.
parse_console() {
    tr -d '\r' <"$1/console.log" | awk -v dir="$1" '
        /^=== vgpu-run [0-9]+ [^ ]+: stdout \(base64\) ===$/ {
            idx = $3; nm = $4; sub(/:$/, "", nm)
            cur = dir "/" idx "-" nm ".out.b64"; printf "" > cur; next }
        /^=== vgpu-run [0-9]+ [^ ]+: stderr \(base64\) ===$/ {
            cur = dir "/" idx "-" nm ".err.b64"; printf "" > cur; next }
        /^=== vgpu-run [0-9]+ [^ ]+: exit [0-9]+ after [0-9.]+ s ===$/ {
            cur = ""; nm = $4; sub(/:$/, "", nm)
            print $3, nm, $6, $8 > (dir "/results"); next }
        /=== vgpu-guest: kernel / { sub(/.*=== vgpu-guest: /, ""); sub(/ ===$/, ""); print > (dir "/boot"); next }
        /=== vgpu-guest: / { cur = ""; next }
        cur != "" { print > cur }'
    for f in "$1"/*.b64; do
        [ -f "$f" ] || continue
        base64 -d <"$f" >"${f%.b64}" 2>/dev/null || echo "(this output did not decode: console garbled)" >>"${f%.b64}"
        rm -f "$f"
    done
}
