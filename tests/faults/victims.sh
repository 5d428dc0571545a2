# SPDX-License-Identifier: Apache-2.0
#
# Sourced by run_killed.sh and run_crashed.sh, after tests/lib/server.sh and
# their own fail(): waiting on the fault_victim programs they start.

# ready NAME: $work/NAME.out says "ready" within 30 s.
ready() {
    i=0
    while ! grep -q ready "$work/$1.out" 2>/dev/null; do
        [ "$i" -lt 300 ] || fail "the $1 program never got ready"
        sleep 0.1
        i=$((i + 1))
    done
}

# ends_ok PID TENTHS WHAT: the background process PID ends within TENTHS
# tenths of a second, with status 0.
ends_ok() {
    i=0
    while kill -0 "$1" 2>/dev/null; do
        [ "$i" -lt "$2" ] || fail "$3 still runs $(($2 / 10)) s later"
        sleep 0.1
        i=$((i + 1))
    done
    wait "$1"
    rc=$?
    [ "$rc" -eq 0 ] || fail "$3 exited with $rc"
}
