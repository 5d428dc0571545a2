# SPDX-License-Identifier: Apache-2.0
# Shell helpers shared by the test runners (sourced, POSIX sh).

# Stops the vgpu-server whose pid is in $server_pid: SIGTERM, up to 5 s for a
# clean exit, then SIGKILL.  $name prefixes the complaint.  Clears server_pid.
stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null
    i=0
    while kill -0 "$server_pid" 2>/dev/null && [ "$i" -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        echo "${name:-vgpu-server}: server did not exit on SIGTERM, killing it" >&2
        kill -KILL "$server_pid" 2>/dev/null
    fi
    wait "$server_pid" 2>/dev/null
    server_pid=
}
