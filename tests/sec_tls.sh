#!/usr/bin/env bash
# tests/sec_tls.sh - TLS on both brokers and cb-api (issue 21,
# docs/security.md "TLS").
# 1. `cb up --tls` (its own nats-server): a private CA and a certificate in
#    DIR/tls; the server takes TLS connections only and every part connects
#    with tls:// and verifies it; a job runs; cb-api serves HTTPS (curl with
#    the CA; without it and over plain HTTP refused); a client without the
#    CA is refused naming the certificate; a tenant (cb tenant add) gets the
#    CA's file with its URLs and runs a job and the Python toolkit through
#    HTTPS with her token.
# 2. RabbitMQ's TLS listener (tools/brokers.sh): `cb up --broker amqps://...`
#    with $CB_BROKER_CA_FILE: every part connects over TLS (the broker's own
#    connection list says so), a job runs, a client without the CA is refused.
# Runs once (tests/run.sh): needs CB_TEST_BIN; part 2 needs CB_TEST_BROKER_URL
# (amqp://, a virtual host of its own), CB_RABBIT_TLS, CB_RABBIT_CA_FILE,
# CB_RABBITMQ_API.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
DIR=$(mktemp -d /tmp/cbtls.XXXXXX)
export CB_DIR="$DIR/.cb" CB_LOG_LEVEL=error
unset CB_BROKER_URL CB_BROKER_PASSWORD_FILE CB_CONFIG CB_API_URL CB_BROKER_CA_FILE CB_API_CA_FILE
PY=/usr/bin/python3
fails=0

stop() {
    "$CB" down --dir "$DIR/.cb" >/dev/null 2>&1
    "$CB" down --dir "$DIR/amqps" >/dev/null 2>&1
    [ "$fails" -eq 0 ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

. "$ROOT/tests/lib.sh" # check, wait_for

# -- 1. cb up --tls on its own nats-server
printf '{"backends": {"local": {"max_concurrency": 2}}}\n' >"$DIR/config.json"
if ! "$CB" up --tls --detach --dir "$CB_DIR" --config "$DIR/config.json" >"$DIR/up.out" 2>&1; then
    echo "FAIL cb up --tls"; cat "$DIR/up.out"; exit 1
fi
CA="$CB_DIR/tls/ca.pem"
PORT=$(sed -n 's/^listen: "127.0.0.1:\([0-9]*\)"$/\1/p' "$CB_DIR/nats.conf")
API=$(cat "$CB_DIR/api_url")
check "cb up --tls made a CA and a server certificate (keys 0600) and prints the CA for clients" \
    bash -c "openssl verify -CAfile '$CA' '$CB_DIR/tls/server.pem' >/dev/null && [ \"\$(stat -c %a '$CB_DIR/tls/server.key')\" = 600 ] && [ \"\$(stat -c %a '$CB_DIR/tls/ca.key')\" = 600 ] && grep -qx 'export CB_BROKER_CA_FILE=$CA' '$DIR/up.out' && grep -qx 'export CB_API_CA_FILE=$CA' '$DIR/up.out'"
check "the broker URL is tls://, the API's https://" \
    bash -c "grep -qx 'tls://cb-admin@localhost:$PORT' '$CB_DIR/url' && [[ '$API' == https://localhost:* ]]"
check "the nats-server requires TLS of every client (its INFO says so)" \
    $PY -c 'import json, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
info = json.loads(s.recv(4096).decode().split(" ", 1)[1])
assert info.get("tls_required") is True, info
print("     INFO: tls_required")' "$PORT"
check "every daemon connects with tls:// (their command lines)" \
    bash -c "[ \$(pgrep -fc 'cb-(engine|projector|adapter|sla|api) --broker tls://cb-[a-z-]*@localhost:$PORT') -ge 5 ]"
printf '{"tenant": "demo", "job_id": "t1", "kind": "map", "function": {"backend": "local", "name": "echo"}, "input": {"items": [1, 2, 3]}}\n' >"$DIR/t1.json"
check "a job runs over TLS" bash -c "'$CB' submit --wait --timeout 60 '$DIR/t1.json' | tail -1 | grep -q '\"result\":\[1,2,3\]'"
check "cb-api serves HTTPS, verified with the CA" \
    bash -c "[ \"\$(curl -s --cacert '$CA' '$API/v1/health')\" = '{\"status\":\"ok\"}' ]"
check "... refused without the CA (curl: the certificate)" \
    bash -c "curl -s -o /dev/null '$API/v1/health'; [ \$? -eq 60 ]"
check "... and in plain HTTP nothing is served" \
    bash -c "! curl -s -m 5 -o /dev/null 'http://127.0.0.1:${API##*:}/v1/health'"
noca() {
    env -u CB_DIR CB_BROKER_URL="tls://cb-admin@localhost:$PORT" \
        CB_BROKER_PASSWORD_FILE="$CB_DIR/broker.password" "$CB" submit "$DIR/t1.json" \
        >/dev/null 2>"$DIR/noca.err"
    [ $? -ne 0 ] && grep -q "unable to get local issuer certificate" "$DIR/noca.err" ||
        { cat "$DIR/noca.err"; false; }
}
check "a client without the CA is refused, naming the certificate" noca
"$CB" tenant add alice >"$DIR/alice.env" 2>"$DIR/alice.err"
check "cb tenant add gives alice tls:// and https:// URLs with the CA's file" \
    bash -c "grep -qx 'export CB_BROKER_URL=tls://alice@localhost:$PORT' '$DIR/alice.env' && grep -qx 'export CB_BROKER_CA_FILE=$CA' '$DIR/alice.env' && grep -qx 'export CB_API_CA_FILE=$CA' '$DIR/alice.env' && grep -qx 'export CB_API_URL=$API' '$DIR/alice.env'"
printf '{"tenant": "alice", "job_id": "a1", "kind": "call", "function": {"backend": "local", "name": "echo"}, "input": "over tls"}\n' >"$DIR/a1.json"
check "alice's job runs with her identity over TLS" \
    bash -c "set -a; . '$DIR/alice.env'; set +a; env -u CB_DIR '$CB' submit --wait --timeout 60 '$DIR/a1.json' | tail -1 | grep -q '\"result\":\"over tls\"'"
toolkit() {
    # (CB_DIR: the stack's object storage, where the toolkit ships the function)
    (set -a; . "$DIR/alice.env"; set +a; cd "$ROOT/toolkit/python" &&
        $PY -c '
import cbcore
with cbcore.FunctionExecutor(backend="local", tenant="alice") as fx:
    fx.map(lambda x: x * 2, [1, 2, 3])
    assert fx.get_result() == [2, 4, 6]
print("     toolkit: [2, 4, 6]")')
}
check "the Python toolkit as alice through HTTPS (her token, the CA from the environment)" toolkit

# -- 2. RabbitMQ over TLS
if [ -z "${CB_RABBIT_TLS:-}" ] || [[ "${CB_TEST_BROKER_URL:-}" != amqp://* ]]; then
    echo "skip RabbitMQ over TLS: no TLS listener given (CB_RABBIT_TLS, CB_TEST_BROKER_URL)"
    [ "$fails" -eq 0 ]
    exit
fi
VHOST=${CB_TEST_BROKER_URL##*/}
AMQPS="amqps://guest:guest@localhost:$CB_RABBIT_TLS/${VHOST}"
if ! CB_BROKER_CA_FILE="$CB_RABBIT_CA_FILE" "$CB" up --detach --dir "$DIR/amqps" \
    --broker "$AMQPS" --config "$DIR/config.json" >"$DIR/up2.out" 2>&1; then
    echo "FAIL cb up --broker amqps://"; cat "$DIR/up2.out"; exit 1
fi
tls_conns() { # the stack's users connected over TLS, but for the administrator
    curl -s -u guest:guest "$CB_RABBITMQ_API/api/connections" | $PY -c 'import json, sys
print(" ".join(sorted(set(c["user"].split(".")[-1] for c in json.load(sys.stdin) if c["vhost"] == sys.argv[1] and c["user"] != "guest" and c.get("ssl")))))' "${VHOST:-/}"
}
all_tls() { [ "$(tls_conns)" = "cb-adapter-local cb-api cb-engine cb-projector cb-sla" ]; }
check "every part connects to RabbitMQ over TLS as its own user (the broker's list)" wait_for 400 all_tls
echo "     over TLS: $(tls_conns)"
check "a job runs over AMQPS" \
    bash -c "CB_DIR='$DIR/amqps' CB_BROKER_CA_FILE='$CB_RABBIT_CA_FILE' CB_LOG_LEVEL=warn '$CB' submit --wait --timeout 60 '$DIR/t1.json' 2>'$DIR/amqps-submit.err' | tail -1 | grep -q '\"result\":\[1,2,3\]'"
amqps_noca() {
    CB_DIR="$DIR/amqps" "$CB" submit "$DIR/t1.json" >/dev/null 2>"$DIR/noca2.err"
    [ $? -ne 0 ] && grep -q "verification failed" "$DIR/noca2.err" || { cat "$DIR/noca2.err"; false; }
}
check "an AMQPS client without the CA is refused, naming the verification" amqps_noca

if [ "$fails" -ne 0 ]; then # what the client and the stack said (files kept in $DIR)
    for f in "$DIR"/*.err "$DIR"/amqps/logs/*.log; do
        [ -s "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
    done
fi
[ "$fails" -eq 0 ]
