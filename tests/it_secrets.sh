#!/usr/bin/env bash
# tests/it_secrets.sh - backend credentials by name (issue 21,
# docs/security.md "Secrets"), once per driver (tests/run.sh): an http
# account whose Authorization header is the secret "faas-token" (a file in
# $CB_SECRETS_DIR), and tenant alice's own ("alice-token", from the
# environment). Jobs of bob and alice succeed (whoami: the function returns
# the header it got) and fail (denied: the server echoes the header in its
# 401). The peer saw each tenant's own credential; neither marker is
# anywhere cbcore writes: the broker's data (every stream), the store, the
# daemons' logs, cb's outputs, the API's answers, command lines.
# Needs CB_TEST_BROKER_URL, CB_TEST_BIN; CB_TEST_BROKER_DATA (the broker's
# data directory) when known.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
DIR=$(mktemp -d /tmp/cbsecr.XXXXXX)
export CB_DIR="$DIR/.cb" CB_LOG_LEVEL=error
unset CB_BROKER_URL CB_CONFIG CB_API_URL
PY=/usr/bin/python3
A="sa$$"
B="sb$$"
MARK1="mk1-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
MARK2="mk2-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
fails=0
PEER=

stop() {
    "$CB" down --dir "$CB_DIR" >/dev/null 2>&1
    [ -n "$PEER" ] && kill "$PEER" 2>/dev/null
    [ "$fails" -eq 0 ] && [ -z "${CB_TEST_KEEP:-}" ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

. "$ROOT/tests/lib.sh" # check, wait_for

PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$ROOT" && exec node tests/peers/http_fn.js "$PORT" >"$DIR/peer.out" 2>&1) &
PEER=$!
check "the http peer listens" wait_for 200 grep -q listening "$DIR/peer.out"

mkdir -m 700 "$DIR/secrets"
printf 'Bearer %s\n' "$MARK1" >"$DIR/secrets/faas-token"
chmod 600 "$DIR/secrets/faas-token"
export CB_SECRETS_DIR="$DIR/secrets" CB_SECRET_ALICE_TOKEN="Bearer $MARK2"
printf '{"backends": {"faas": {"type": "http", "url": "http://127.0.0.1:%s/fn/{name}", "headers": {"Authorization": {"secret": "faas-token"}}, "tenants": {"%s": {"headers": {"Authorization": {"secret": "alice-token"}}}}}}}\n' \
    "$PORT" "$A" >"$DIR/config.json"
if ! "$CB" up --detach --dir "$CB_DIR" --broker "$CB_TEST_BROKER_URL" --config "$DIR/config.json" >"$DIR/up.out" 2>&1; then
    echo "FAIL cb up"; cat "$DIR/up.out"; exit 1
fi
unset CB_SECRET_ALICE_TOKEN # the daemons have it; nothing after this needs it
API=$(cat "$CB_DIR/api_url")

job() { # TENANT JOB FUNCTION
    printf '{"tenant": "%s", "job_id": "%s", "kind": "call", "function": {"backend": "faas", "name": "%s"}, "input": 1, "retry": {"limit": 0}}\n' \
        "$1" "$2" "$3" >"$DIR/$1-$2.json"
    "$CB" submit --wait --timeout 60 --json "$DIR/$1-$2.json" >"$DIR/$1-$2.out" 2>&1
}
check "bob's job succeeds" job "$B" ok whoami
check "alice's job succeeds" job "$A" ok whoami
check "bob's job that the server denies fails" bash -c "$(declare -f job); DIR='$DIR' CB='$CB'; ! job '$B' bad denied"
check "alice's too" bash -c "$(declare -f job); DIR='$DIR' CB='$CB'; ! job '$A' bad denied"
check "... saying why, with the credential blanked out" grep -q 'denied for \*\*\*\*\*\*\*' "$DIR/$A-bad.out"
check "the server saw the account's credential for bob, alice's own for alice" \
    $PY - "$PORT" "$MARK1" "$MARK2" <<'PY'
import json, sys, urllib.request
port, m1, m2 = sys.argv[1:4]
arr = json.load(urllib.request.urlopen("http://127.0.0.1:%s/stats" % port, timeout=10))["arrivals"]
auth = [a["auth"] for a in arr if a["path"] in ("/fn/whoami", "/fn/denied")]
assert len(auth) == 4, auth
n1 = sum(1 for a in auth if a == "Bearer " + m1)
n2 = sum(1 for a in auth if a == "Bearer " + m2)
print("     account's credential %d times, alice's %d times" % (n1, n2))
assert n1 == 2 and n2 == 2
PY

# everything cbcore wrote or answered, into one place to search
{
    for t in "$A" "$B"; do
        for j in ok bad; do
            "$CB" replay --job "$t/$j" --json
            "$CB" result "$t/$j"
            "$CB" status "$t/$j" --json
            for path in "" /result /events; do
                curl -s "$API/v1/tenants/$t/jobs/$j$path"
            done
        done
    done
    cat "$CB_DIR"/logs/*.log
    cat /proc/[0-9]*/cmdline 2>/dev/null
} >"$DIR/written.txt" 2>&1
found() { # where a marker is: the outputs, the store, the broker's data
    grep -a -l -e "$MARK1" -e "$MARK2" "$DIR/written.txt" "$CB_DIR"/store/* 2>/dev/null
    [ -n "${CB_TEST_BROKER_DATA:-}" ] && grep -a -r -l -e "$MARK1" -e "$MARK2" "$CB_TEST_BROKER_DATA" 2>/dev/null
    return 0
}
check "the outputs were gathered (the failures' reasons among them)" grep -q 'denied for' "$DIR/written.txt"
check "no credential in the log, the store, the broker's data, the logs, the outputs, the API's answers or a command line" \
    bash -c "$(declare -f found); MARK1='$MARK1' MARK2='$MARK2' DIR='$DIR' CB_DIR='$CB_DIR' CB_TEST_BROKER_DATA='${CB_TEST_BROKER_DATA:-}'; [ -z \"\$(found)\" ] || { echo \"     found in: \$(found | tr '\\n' ' ')\"; false; }"
[ -n "${CB_TEST_BROKER_DATA:-}" ] && check "... and the search reaches the streams: the broker's data holds the failures' reasons" \
    grep -a -r -q "denied for" "$CB_TEST_BROKER_DATA"

[ "$fails" -eq 0 ]
