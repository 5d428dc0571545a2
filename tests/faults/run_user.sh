#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# run_user.sh NAME SERVER FAKE_DIR SHIM_DIR LOAD_CLIENT VICTIM WORK
#
# A server started as root with --user nobody: a session process (VICTIM's,
# which makes a call every 10 ms) runs as nobody (real, effective, saved
# and filesystem uid and gid) and holds no capability; sessions still serve
# their programs (LOAD_CLIENT's round trips come back right); the fatbin
# cache is nobody's; the socket file has the group and mode its flag says,
# and a socket of the sessions' own group is refused.  Started as another user, the
# server refuses a user it cannot become.  Skipped (77) unless run as root.
set -u
name=$1 server=$2 fake=$3 shim_dir=$4 prog=$5 victim=$6 work=$7
server_pid=
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"
fail() {
    echo "$name: $*" >&2
    tail -n 20 "$work/server.log" >&2
    exit 1
}
# shellcheck source=victims.sh
. "$(dirname "$0")/victims.sh"
if [ "$(id -u)" -ne 0 ]; then
    echo "$name: skipped: needs root (sessions change user only under a server started as root)"
    exit 77
fi
nobody=$(id -u nobody 2>/dev/null) || { echo "$name: skipped: no user nobody"; exit 77; }
nogroup=$(id -g nobody)
fresh_work s
# the cache's parents must let nobody through (a build tree under /root does not)
cache=$(mktemp -d /tmp/vgpu-user-cache.XXXXXX) || fail "mktemp failed"
rmdir "$cache"
trap 'stop_server; rm -rf "$cache"; [ -z "$sockdir" ] || rm -rf "$sockdir"' EXIT
# a socket the sessions' own group may open is refused: a session taken over could connect
if "$server" --listen "unix:$sock,group=$(id -gn nobody)" --cache-dir "$cache" --user nobody \
        --check > "$work/check.log" 2>&1; then
    fail "a socket of the sessions' group was accepted"
fi
grep -q 'is a group of the user sessions run as' "$work/check.log" ||
    fail "a socket of the sessions' group: no reason given: $(cat "$work/check.log")"
group=$(getent group daemon adm sys bin | awk -F: -v g="$nogroup" '$3 != g { print $1 ":" $3; exit }')
[ -n "$group" ] || { echo "$name: skipped: no group to give the socket"; exit 77; }
start_server "$fake" --listen "unix:$sock,group=${group%%:*},mode=0660" --cache-dir "$cache" \
    --user nobody --log-level info
# the socket file as [listen] says, not as the umask would have it
[ "$(stat -c '%a %g' "$sock")" = "660 ${group#*:}" ] ||
    fail "the socket is $(stat -c '%a %g' "$sock"), not 660 with group ${group#*:}"
grep -q "sessions run as user nobody (uid $nobody" "$work/server.log" || fail "no line saying sessions run as nobody"
env -u LD_PRELOAD VGPU_SERVER="unix:$sock" LD_LIBRARY_PATH="$shim_dir" timeout 60 "$victim" \
    > "$work/victim.out" 2> "$work/victim.err" &
victim_pid=$!
ready victim
session=$(pgrep -P "$server_pid" | head -n 1)
[ -n "$session" ] || fail "no session process under the server"
status=$(cat "/proc/$session/status") || fail "session $session ended before it could be looked at"
kill "$victim_pid"
wait "$victim_pid" 2>/dev/null
uids=$(echo "$status" | awk '/^Uid:/ { print $2, $3, $4, $5 }')
gids=$(echo "$status" | awk '/^Gid:/ { print $2, $3, $4, $5 }')
caps=$(echo "$status" | awk '/^CapEff:/ { print $2 }')
[ "$uids" = "$nobody $nobody $nobody $nobody" ] || fail "the session's uids are '$uids', not nobody's ($nobody)"
[ "$gids" = "$nogroup $nogroup $nogroup $nogroup" ] || fail "the session's gids are '$gids', not $nogroup"
[ "$caps" = "0000000000000000" ] || fail "the session holds capabilities $caps"
env -u LD_PRELOAD VGPU_SERVER="unix:$sock" LD_LIBRARY_PATH="$shim_dir" timeout 60 "$prog" 2000 \
    > "$work/client.out" 2> "$work/client.err" ||
    fail "the program failed under a session run as nobody: $(cat "$work/client.out" "$work/client.err")"
grep -q '^ok 2000$' "$work/client.out" || fail "the program's round trips: $(cat "$work/client.out")"
[ "$(stat -c %u "$cache")" = "$nobody" ] || fail "the fatbin cache is not nobody's"
ls "$cache"/*.fatbin >/dev/null 2>&1 || fail "the session (as nobody) wrote nothing into the cache"
stop_server
echo "$name: session $session ran as uid/gid $nobody/$nogroup with no capabilities"

# not as root: another user is refused at start
if setpriv --reuid=nobody --regid="$nogroup" --clear-groups true 2>/dev/null; then
    setpriv --reuid=nobody --regid="$nogroup" --clear-groups env LD_LIBRARY_PATH="$fake" \
        "$server" --listen "unix:/tmp/vgpu-user-$$.sock" --cache-dir "/tmp/vgpu-user-$$" --user root \
        > /dev/null 2> "$work/notroot.log" && fail "a server not started as root accepted --user root"
    rm -rf "/tmp/vgpu-user-$$"
    grep -q 'only when the server starts as root' "$work/notroot.log" ||
        fail "not as root: the refusal does not say why: $(cat "$work/notroot.log")"
    # and a server started as an ordinary user runs (its sessions as itself)
    d=$(mktemp -d /tmp/vgpu-user-plain.XXXXXX)
    chown nobody "$d"
    setpriv --reuid=nobody --regid="$nogroup" --clear-groups env LD_LIBRARY_PATH="$fake" \
        "$server" --listen "unix:$d/s" --cache-dir "$d/cache" > /dev/null 2> "$d/log" &
    plain=$!
    i=0
    while [ ! -S "$d/s" ] && kill -0 "$plain" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    [ -S "$d/s" ] || { cat "$d/log" >&2; rm -rf "$d"; fail "a server started as nobody did not start"; }
    kill -TERM "$plain"
    wait "$plain"
    rm -rf "$d"
fi
echo "$name: passed"
