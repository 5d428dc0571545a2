# SPDX-License-Identifier: Apache-2.0
# Shell helpers of the isolation tests (sourced, POSIX sh).  The caller sets
# $name (the test's name, prefixing complaints) and $work (its directory).
# shellcheck shell=sh
# The caller's variables ($name, $work, $server, $shim_dir) are set before use.
# shellcheck disable=SC2154

# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"

fail() {
    echo "$name: $*" >&2
    exit 1
}

# True when this machine has an NVIDIA GPU.
gpu_present() {
    nvidia-smi -L >/dev/null 2>&1 || [ -e /dev/nvidia0 ]
}

# A unix socket path must fit in sun_path (108 bytes, and the server adds
# ".admin" for its admin socket): deep build trees get a private directory
# under /tmp.  Sets $sock and $sockdir (to remove, or empty).
pick_socket() {
    sock=$work/$1
    sockdir=
    if [ ${#sock} -gt 90 ]; then
        sockdir=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-iso.XXXXXX") || fail "mktemp failed"
        sock=$sockdir/$1
    fi
}

# Runs a CUDA program through the shim against $sock: client ARGS...
client() {
    env -u LD_PRELOAD VGPU_SERVER="unix:$sock" LD_LIBRARY_PATH="$shim_dir" \
        timeout "${VGPU_ISO_TIMEOUT:-60}" "$@"
}

# wait_file FILE SECONDS PID: waits for FILE while process PID lives.
wait_file() {
    i=0
    while [ ! -e "$1" ]; do
        kill -0 "$3" 2>/dev/null || return 1
        [ "$i" -lt $(($2 * 10)) ] || return 1
        sleep 0.1
        i=$((i + 1))
    done
}

# compare_expected EXPECTED ACTUAL: line by line.  An expected line
# "TEXT -> A|B" matches "TEXT -> A" or "TEXT -> B"; any other line must be
# equal.  Prints the differences and returns 1 when there are any.
compare_expected() {
    awk -v expfile="$1" -v what="$(basename "$2")" '
    function matches(w, g,    p, n, k, alt) {
        p = index(w, " -> ")
        if (!p)
            return w == g
        if (substr(w, 1, p + 3) != substr(g, 1, p + 3))
            return 0
        n = split(substr(w, p + 4), alt, "|")
        for (k = 1; k <= n; k++)
            if (alt[k] == substr(g, p + 4))
                return 1
        return 0
    }
    BEGIN { n = 0; while ((getline line < expfile) > 0) want[++n] = line }
    { got[++m] = $0 }
    END {
        bad = 0
        for (i = 1; i <= n || i <= m; i++) {
            if (i > m) {
                printf "%s line %d: missing, expected \"%s\"\n", what, i, want[i]
                bad = 1
            } else if (i > n) {
                printf "%s line %d: unexpected \"%s\"\n", what, i, got[i]
                bad = 1
            } else if (!matches(want[i], got[i])) {
                printf "%s line %d: expected \"%s\"\n%s line %d:      got \"%s\"\n", what, i,
                       want[i], what, i, got[i]
                bad = 1
            }
        }
        exit bad
    }' "$2"
}

# The server's log must show no sanitizer report, and (on the fake runtime)
# no value that reached the runtime without being checked.
check_server_log() {
    if grep -n -e 'ERROR: AddressSanitizer' -e 'runtime error:' -e 'ERROR: LeakSanitizer' \
        "$work/server.log" >&2; then
        problems="$problems sanitizer report in the server log;"
    fi
    if grep -n 'fakecuda: refused' "$work/server.log" >&2; then
        problems="$problems a guest value reached the runtime unchecked (fakecuda: refused);"
    fi
}
