#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# run_tls.sh NAME SERVER FAKE_DIR SHIM_DIR LOAD_CLIENT BIG_COPIES VICTIM WORK
#
# Remote servers over mutual TLS, on the fake runtime, with certificates
# made here by certtool: a CA, the server's certificate (localhost,
# 127.0.0.1), and clients: tenant7 and dev7 (named by [cert] sections),
# stranger (the CA signed it; no [cert] names it) and rogue (another CA).
#   - tenant7 runs LOAD_CLIENT (round trips whose answers only it can
#     predict) and BIG_COPIES (150 MiB copies each way) over tcp: and gets
#     vm 7, pool B, high: the identity of its certificate;
#   - while VICTIM (a call every 10 ms) runs over TLS: the server's private
#     key is nowhere in its session's memory (only the TLS relay process
#     holds it), and the relay holds no capability; its session killed, the
#     program gets an error, not a SIGPIPE;
#   - no certificate, rogue's, a certificate made for servers only, plain
#     TCP, and a server certificate the client's CA did not sign or made for
#     clients only: refused at the handshake, before any CUDA
#     call (no session in the server's log), with a message naming the
#     problem on the client's side;
#   - stranger: trusted but unknown, refused with the reason in the
#     program's stderr;
#   - a device link over TLS (python3's ssl as the device): dev7's
#     certificate with a HELLO saying vm 7 is taken, one saying vm 8 or
#     priority high is refused: a certificate's identity cannot be exceeded;
#   - the server refuses to start with a tcp: listener and no credentials,
#     and warns at start for tls = insecure.
set -u
name=$1 server=$2 fake=$3 shim_dir=$4 prog=$5 big=$6 victim=$7 work=$8
server_pid=
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"
fresh_work s
fail() {
    echo "$name: $*" >&2
    tail -n 30 "$work/server.log" >&2
    exit 1
}
# shellcheck source=../faults/victims.sh
. "$(dirname "$0")/../faults/victims.sh"
command -v certtool >/dev/null || fail "certtool (Debian's gnutls-bin) is needed"
pki=$work/pki
mkdir -p "$pki" "$work/cache"
chmod 700 "$work/cache"

# ---- certificates (certtool templates: https://gnutls.org/manual/html_node/certtool-Invocation.html)
cert() {   # cert NAME TEMPLATE-LINES [CA]: NAME-key.pem and NAME-cert.pem, signed by CA (else self-signed)
    certtool --generate-privkey --key-type=ecdsa --outfile "$pki/$1-key.pem" 2>/dev/null ||
        fail "certtool cannot make a key"
    printf '%b' "$2" > "$pki/$1.tmpl"
    if [ -n "${3:-}" ]; then
        certtool --generate-certificate --load-privkey "$pki/$1-key.pem" \
            --load-ca-certificate "$pki/$3-cert.pem" --load-ca-privkey "$pki/$3-key.pem" \
            --template "$pki/$1.tmpl" --outfile "$pki/$1-cert.pem" 2>/dev/null
    else
        certtool --generate-self-signed --load-privkey "$pki/$1-key.pem" \
            --template "$pki/$1.tmpl" --outfile "$pki/$1-cert.pem" 2>/dev/null
    fi || fail "certtool cannot make $1's certificate"
}
ca_t='cn = "vgpu test CA"\nca\ncert_signing_key\nexpiration_days = 2\n'
cert ca "$ca_t"
cert otherca "cn = \"another CA\"\nca\ncert_signing_key\nexpiration_days = 2\n"
cert server 'cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\nencryption_key\nexpiration_days = 2\n' ca
cert fakeserver 'cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\nencryption_key\nexpiration_days = 2\n' otherca
for c in tenant7 dev7 stranger; do
    cert "$c" "cn = \"$c\"\ntls_www_client\nsigning_key\nexpiration_days = 2\n" ca
done
cert rogue 'cn = "tenant7"\ntls_www_client\nsigning_key\nexpiration_days = 2\n' otherca
# signed by the right CA for the wrong use: a server's certificate as a client's, and back
cert serveronly 'cn = "tenant7"\ntls_www_server\nsigning_key\nexpiration_days = 2\n' ca
cert clientserver 'cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\ntls_www_client\nsigning_key\nencryption_key\nexpiration_days = 2\n' ca
# the server's directory in QEMU's tls-creds-x509 layout
mkdir -p "$pki/srv"
cp "$pki/ca-cert.pem" "$pki/srv/ca-cert.pem"
cp "$pki/server-cert.pem" "$pki/srv/server-cert.pem"
cp "$pki/server-key.pem" "$pki/srv/server-key.pem"
dev7_sha=$(certtool --fingerprint --hash sha256 --infile "$pki/dev7-cert.pem" 2>/dev/null | tr -d ' \n')
[ ${#dev7_sha} -eq 64 ] || dev7_sha=$(certtool -i --infile "$pki/dev7-cert.pem" |
    awk '/sha256:/ { print $2; exit }')
[ ${#dev7_sha} -eq 64 ] || fail "cannot read dev7's SHA-256 fingerprint: '$dev7_sha'"

# ---- the server: a unix socket (start_server waits for it), a TLS client socket, a TLS device socket
try_start() {   # try_start PORT: 0 when the server listens on both ports
    port=$1 dport=$(($1 + 1))
    cat > "$work/server.ini" <<EOF
[server]
cache_dir = $work/cache
log_level = info

[pool B]
gpus = 0

[listen local]
address = unix:$sock

[listen remote]
address = tcp:127.0.0.1:$port

[listen devices]
address = tcp:127.0.0.1:$dport
type = device

[tls]
dir = $pki/srv

[cert tenant]
cn = tenant7
vm_id = 7
pool = B
priority = high

[cert device]
sha256 = $dev7_sha
vm_id = 7
pool = B
EOF
    rm -f "$sock"
    LD_LIBRARY_PATH=$fake "$server" --config "$work/server.ini" </dev/null >/dev/null \
        2>"$work/server.log" &
    server_pid=$!
    i=0
    while [ ! -S "$sock" ] && kill -0 "$server_pid" 2>/dev/null && [ "$i" -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    [ -S "$sock" ] && grep -q "listening on tcp:127.0.0.1:$dport" "$work/server.log" && return 0
    stop_server
    return 1
}
base=$((20000 + $$ % 20000))
started=
for k in 0 2 4 6 8 10 12 14; do
    if try_start $((base + k * 97)); then started=1; break; fi
done
[ -n "$started" ] || fail "the server did not start (no free pair of ports?)"

# run TAG ENV...: $cmd (LOAD_CLIENT 400, or BIG_COPIES) over tcp: with ENV; its output in
# $work/TAG.out and .err
cmd="$prog 400"
run() {
    tag=$1
    shift
    # shellcheck disable=SC2086 # $cmd is the program and its argument
    env -u LD_PRELOAD VGPU_SERVER="tcp:127.0.0.1:$port" LD_LIBRARY_PATH="$shim_dir" "$@" \
        timeout 60 $cmd > "$work/$tag.out" 2> "$work/$tag.err"
}
sessions() { grep -c 'session for ' "$work/server.log"; }

# 1. the tenant: works, with its certificate's identity
run good VGPU_TLS_DIR="$pki/none" VGPU_TLS_CA="$pki/ca-cert.pem" \
    VGPU_TLS_CERT="$pki/tenant7-cert.pem" VGPU_TLS_KEY="$pki/tenant7-key.pem" ||
    fail "the client with tenant7's certificate failed: $(cat "$work/good.out" "$work/good.err")"
grep -q '^ok 400$' "$work/good.out" || fail "tenant7's round trips: $(cat "$work/good.out")"
cmd=$big
run big VGPU_TLS_DIR="$pki/none" VGPU_TLS_CA="$pki/ca-cert.pem" \
    VGPU_TLS_CERT="$pki/tenant7-cert.pem" VGPU_TLS_KEY="$pki/tenant7-key.pem" ||
    fail "150 MiB copies over TLS failed: $(cat "$work/big.out" "$work/big.err")"
cmd="$prog 400"
grep -q 'session for .* vm 7 pool B priority high' "$work/server.log" ||
    fail "tenant7's session does not have vm 7, pool B, high"
grep -q 'TLS client \[cert tenant\] (CN tenant7)' "$work/server.log" ||
    fail "the server did not log tenant7's certificate"
# the same with the credentials in a directory of QEMU's client layout
mkdir -p "$pki/cli"
cp "$pki/ca-cert.pem" "$pki/cli/ca-cert.pem"
cp "$pki/tenant7-cert.pem" "$pki/cli/client-cert.pem"
cp "$pki/tenant7-key.pem" "$pki/cli/client-key.pem"
run gooddir VGPU_TLS_DIR="$pki/cli" ||
    fail "the client with VGPU_TLS_DIR failed: $(cat "$work/gooddir.err")"

# the key is the relay's alone: not in a session's memory; the relay holds no capability
tenant_env="VGPU_TLS_DIR=$pki/cli"
env -u LD_PRELOAD VGPU_SERVER="tcp:127.0.0.1:$port" LD_LIBRARY_PATH="$shim_dir" $tenant_env \
    timeout 60 "$victim" > "$work/victim.out" 2> "$work/victim.err" &
victim_pid=$!
ready victim
session=$(pgrep -P "$server_pid" | tail -n 1)
relay=$(pgrep -P "$session" | head -n 1)
[ -n "$session" ] && [ -n "$relay" ] || fail "no session ($session) or relay ($relay) process"
tr '\0' ' ' < "/proc/$relay/cmdline" | grep -q -- '--tls-relay' || fail "the session's child $relay is not its TLS relay"
[ "$(awk '/^CapEff:/ { print $2 }' "/proc/$relay/status")" = 0000000000000000 ] ||
    fail "the TLS relay holds capabilities: $(grep Cap "/proc/$relay/status")"
[ "$(awk '/^Seccomp:/ { print $2 }' "/proc/$relay/status")" = 2 ] || fail "the TLS relay has no seccomp filter"
[ "$(awk '/^Uid:/ { print $3 }' "/proc/$relay/status")" != 0 ] || fail "the TLS relay runs as root"
for t in /proc/"$session"/task/*; do
    [ "$(awk '/^CapEff:/ { print $2 }' "$t/status")" = 0000000000000000 ] ||
        fail "a thread of the session holds capabilities ($t)"
done
python3 - "$session" "$relay" "$pki/srv/server-key.pem" <<'EOF2' || fail "the server's private key is in a session's memory"
import re, subprocess, sys
session, relay, keyfile = sys.argv[1], sys.argv[2], sys.argv[3]
text = subprocess.run(["certtool", "-k", "--infile", keyfile], capture_output=True, text=True).stdout
m = re.search(r"private key:\s*((?:\s*[0-9a-f]{2}:?)+)", text)
scalar = bytes.fromhex(re.sub(r"[^0-9a-f]", "", m.group(1)))
scalar = scalar.lstrip(b"\0") if len(scalar) > 32 else scalar
def holds(pid):
    found = False
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if "r" not in perms:
                continue
            lo, hi = (int(x, 16) for x in addr.split("-"))
            if hi - lo > (1 << 32):
                continue    # a sanitizer's shadow reservation, not data
            tail = b""
            for at in range(lo, hi, 1 << 24):
                try:
                    mem.seek(at)
                    data = tail + mem.read(min(1 << 24, hi - at))
                except (OSError, ValueError, OverflowError):
                    break
                if scalar in data or scalar[::-1] in data:
                    found = True
                tail = data[-(len(scalar) - 1):]
    return found
# the check must be able to see the key where it is: in the relay
if not holds(relay):
    print("the key's scalar is not found in the relay either: the check sees nothing", file=sys.stderr)
    sys.exit(2)
sys.exit(1 if holds(session) else 0)
EOF2
kill -KILL "$session"
wait "$victim_pid"
rc=$?
[ "$rc" -ne 141 ] || fail "the program died of SIGPIPE when its session was killed"
grep -q 'lost the connection' "$work/victim.err" ||
    fail "the program's session killed: stderr does not say so: $(cat "$work/victim.err")"
echo "$name: key only in the relay, relay without capabilities, a killed session gives: $(grep -m1 '^error' "$work/victim.out")"
n_ok=$(sessions)

# 2. refused before any CUDA call
expect_refused() {   # expect_refused TAG WHAT PATTERN ENV...: fails, says PATTERN, no session
    tag=$1 what=$2 pattern=$3
    shift 3
    if run "$tag" "$@"; then fail "$what: the program succeeded"; fi
    grep -q "$pattern" "$work/$tag.err" ||
        fail "$what: stderr does not say '$pattern': $(cat "$work/$tag.err")"
    [ "$(sessions)" -eq "$n_ok" ] || fail "$what: the server made a session"
    echo "$name: $what: $(grep -m1 "$pattern" "$work/$tag.err")"
}
expect_refused nocert "no client certificate" 'cannot read' \
    VGPU_TLS_DIR="$pki/none" VGPU_TLS_CA="$pki/ca-cert.pem"
expect_refused rogue "a certificate of another CA" "refused this client's certificate" \
    VGPU_TLS_DIR="$pki/none" VGPU_TLS_CA="$pki/ca-cert.pem" \
    VGPU_TLS_CERT="$pki/rogue-cert.pem" VGPU_TLS_KEY="$pki/rogue-key.pem"
grep -q 'client certificate refused\|TLS handshake failed' "$work/server.log" ||
    fail "the server did not log the rogue certificate's refusal"
expect_refused serveronly "a certificate made for servers, as a client's" "refused this client's certificate" \
    VGPU_TLS_DIR="$pki/none" VGPU_TLS_CA="$pki/ca-cert.pem" \
    VGPU_TLS_CERT="$pki/serveronly-cert.pem" VGPU_TLS_KEY="$pki/serveronly-key.pem"
expect_refused wrongca "a server the client's CA did not sign" 'is not trusted' \
    VGPU_TLS_DIR="$pki/none" VGPU_TLS_CA="$pki/otherca-cert.pem" \
    VGPU_TLS_CERT="$pki/tenant7-cert.pem" VGPU_TLS_KEY="$pki/tenant7-key.pem"
expect_refused wrongname "a server name the certificate lacks" 'is not trusted' \
    VGPU_TLS_DIR="$pki/cli" VGPU_TLS_SERVER_NAME=gpu.example
expect_refused plain "plain TCP to a TLS socket" 'TLS\|handshake\|lost the connection\|cannot reach' \
    VGPU_TLS=insecure
expect_refused stranger "a trusted certificate no [cert] names" 'no \[cert\] section' \
    VGPU_TLS_DIR="$pki/none" VGPU_TLS_CA="$pki/ca-cert.pem" \
    VGPU_TLS_CERT="$pki/stranger-cert.pem" VGPU_TLS_KEY="$pki/stranger-key.pem"
# a TLS client with no certificate at all (the shim always presents one: python3's ssl here);
# the relay must refuse it in the handshake, and say so
refused=$(grep -c 'TLS handshake failed: .*[Cc]ertificate' "$work/server.log")
python3 - "$dport" "$pki" <<'EOF' || fail "a client without a certificate was not refused"
import socket, ssl, sys
port, pki = int(sys.argv[1]) - 1, sys.argv[2]
ctx = ssl.create_default_context(cafile=pki + "/ca-cert.pem")
try:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"x" * 32)
            sys.exit(1 if s.recv(1) else 0)
except (ssl.SSLError, ConnectionError, OSError):
    sys.exit(0)
EOF
[ "$(sessions)" -eq "$n_ok" ] || fail "a client without a certificate got a session"
i=0
while [ "$(grep -c 'TLS handshake failed: .*[Cc]ertificate' "$work/server.log")" -le "$refused" ]; do
    [ "$i" -lt 50 ] || fail "the relay did not log refusing a client without a certificate"
    sleep 0.1
    i=$((i + 1))
done

# 3. devices: the certificate bounds what a HELLO may say
hello() {   # hello VM POOL PRIO: a device link's HELLO over TLS with dev7's certificate
    python3 - "$dport" "$pki" "$1" "$2" "$3" <<'EOF'
import socket, ssl, struct, sys, time
port, pki, vm, pool, prio = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
ctx = ssl.create_default_context(cafile=pki + "/ca-cert.pem")
ctx.load_cert_chain(pki + "/dev7-cert.pem", pki + "/dev7-key.pem")
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        payload = struct.pack("<IBBHI", vm, ord(pool), prio, 0, 1)
        s.sendall(struct.pack("<IHHII", 0x4c445056, 1, 0, 0, len(payload)) + payload)
        time.sleep(0.5)
EOF
}
hello 7 B 1 || fail "dev7's link with a HELLO of vm 7 could not connect"
hello 8 B 1 >/dev/null 2>&1
hello 7 B 2 >/dev/null 2>&1
sleep 0.5
grep -q 'vgpu-stub link: vm 7, pool B' "$work/server.log" ||
    fail "dev7's link with a HELLO of vm 7 was not taken"
grep -q 'HELLO says vm 8' "$work/server.log" || fail "a HELLO of vm 8 over dev7's certificate was not refused"
grep -q 'HELLO says vm 7, pool B, high' "$work/server.log" ||
    fail "a HELLO of priority high over dev7's certificate (medium) was not refused"
stop_server

# 4. start-up: credentials required; tls = insecure warns
if "$server" --listen "tcp:127.0.0.1:$port" --cache-dir "$work/cache" 2> "$work/nocreds.log"; then
    fail "the server started with a TLS listener and no credentials"
fi
grep -q 'speaks TLS and \[tls\] names no credentials' "$work/nocreds.log" ||
    fail "no credentials: the server did not say why: $(cat "$work/nocreds.log")"
start_server "$fake" --listen "unix:$sock" --listen "tcp:127.0.0.1:$port,tls=insecure" \
    --cache-dir "$work/cache"
grep -q 'without TLS' "$work/server.log" || fail "tls = insecure: no warning at start"
run insecure VGPU_TLS=insecure || fail "plain TCP with tls = insecure failed: $(cat "$work/insecure.err")"
n_ok=$(sessions)
expect_refused tlstoplain "TLS to a plain TCP socket" 'is its socket one that speaks TLS' \
    VGPU_TLS_DIR="$pki/cli"
stop_server
# a server whose certificate was made for clients only: the shim does not take it
mkdir -p "$pki/srv2"
cp "$pki/ca-cert.pem" "$pki/srv2/ca-cert.pem"
cp "$pki/clientserver-cert.pem" "$pki/srv2/server-cert.pem"
cp "$pki/clientserver-key.pem" "$pki/srv2/server-key.pem"
sed "s|^dir = .*|dir = $pki/srv2|" "$work/server.ini" > "$work/server2.ini"
rm -f "$sock"
start_server "$fake" --config "$work/server2.ini"
n_ok=$(sessions)
expect_refused clientpurpose "a server certificate made for clients" 'is not trusted' \
    VGPU_TLS_DIR="$pki/cli"
stop_server
echo "$name: passed"
