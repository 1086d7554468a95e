#!/usr/bin/env bash
# tests/it_api.sh - cb-api against a real broker (run once per driver by
# tests/run.sh): `cb up --detach` on the given broker, then cb-api on a free
# loopback port over the stack's store, and every route it serves so far
# (docs/api.md): health, ready, submit (accepted 201, bad JSON, a job the
# schema refuses, no tenant, a body over the limit), a job's state (and 404
# for an unknown one), a job's SSE stream (progress while it runs, the done
# event at the end; at once for a client that comes late), cancel through
# the API ending a running job, unknown routes and wrong methods, and a
# client that hangs up mid-request leaving the server serving.
# Needs CB_TEST_BROKER_URL, CB_TEST_BIN.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
URL=$CB_TEST_BROKER_URL
DIR=$(mktemp -d /tmp/cbapi.XXXXXX)
export CB_DIR="$DIR/.cb" CB_LOG_LEVEL=error
unset CB_BROKER_URL
fails=0
T="api$$"
API_PID=

stop() {
    [ -n "$API_PID" ] && kill "$API_PID" 2>/dev/null && wait "$API_PID" 2>/dev/null
    "$CB" down --dir "$CB_DIR" >/dev/null 2>&1
    [ "$fails" -eq 0 ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@"; then echo "ok   $name"; else
        echo "FAIL $name"
        fails=$((fails + 1))
    fi
}

# http METHOD PATH [BODY_FILE]: the status in $CODE, the body in $DIR/body
http() {
    local args=(-s -o "$DIR/body" -w '%{http_code}' -X "$1" --max-time 60)
    [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "@$3")
    CODE=$(curl "${args[@]}" "$BASE$2")
}
# body_has PYTHON-EXPRESSION over the parsed body `b`
body_has() {
    /usr/bin/python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
        "$DIR/body" "$1" 2>/dev/null
}
is() { # is STATUS PYTHON-EXPRESSION: the last answer's status and body
    [ "$CODE" = "$1" ] && body_has "$2"
}
job() { # job FILE JSON-with-TENANT
    sed "s/TENANT/$T/g" >"$DIR/$1"
}

if ! "$CB" up --detach --dir "$CB_DIR" --broker "$URL" \
    --config "$ROOT/tests/fixtures/functions.json" >"$DIR/up.out" 2>&1; then
    echo "FAIL cb up"; cat "$DIR/up.out"; exit 1
fi
"$CB_TEST_BIN/cb-api" --broker "$URL" --store "$CB_DIR/store" --listen 127.0.0.1:0 \
    --port-file "$DIR/port" 2>"$DIR/api.log" &
API_PID=$!
for _ in $(seq 1 200); do [ -s "$DIR/port" ] && break; sleep 0.05; done
if [ ! -s "$DIR/port" ]; then echo "FAIL cb-api did not start"; cat "$DIR/api.log"; exit 1; fi
BASE="http://127.0.0.1:$(cat "$DIR/port")"

# -- health and readiness
http GET /v1/health
check "GET /v1/health is 200 {status: ok}" is 200 'b == {"status": "ok"}'
http GET /v1/ready
check "GET /v1/ready is 200: broker connected, store readable" \
    is 200 'b["status"] == "ready" and b["broker"]["connected"] and b["store"]'

# -- submit, then the job's state
job add7.json <<'J'
{"tenant": "TENANT", "kind": "call", "function": {"backend": "local", "name": "add7"}, "input": 35}
J
http POST /v1/jobs "$DIR/add7.json"
check "POST /v1/jobs is 201 with the engine's reply" \
    is 201 'b["accepted"] is True and b["job_id"]'
jid=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("job_id",""))' "$DIR/body")
check "the job runs to its result (cb result)" test "$("$CB" result --timeout 60 "$T/$jid")" = 42
# the store may fold the end a moment after the done message
for _ in $(seq 1 100); do
    http GET "/v1/jobs/$T/$jid"
    body_has 'b["status"] == "succeeded"' && break
    sleep 0.05
done
check "GET /v1/jobs/T/J is 200 with the state the store has" \
    is 200 'b["status"] == "succeeded" and b["job_id"] == "'"$jid"'" and b["counts"]["total"] == 1 and b["counts"]["succeeded"] == 1 and b["timings"]["finished"]'
# a client that connects after the end gets the done event at once
timeout 30 curl -sN "$BASE/v1/jobs/$T/$jid/stream" >"$DIR/late.sse" 2>/dev/null
check "GET .../stream of an ended job: the done event at once, then the stream ends" \
    /usr/bin/python3 - "$DIR/late.sse" <<'PY'
import json, sys
blocks = [b for b in open(sys.argv[1]).read().split("\n\n") if b.strip()]
assert len(blocks) == 1 and blocks[0].startswith("event: done\ndata: "), blocks
d = json.loads(blocks[0].split("\ndata: ", 1)[1])
assert d["status"] == "succeeded" and d["result"] == 42, d
PY
http GET "/v1/jobs/$T/nosuchjob"
check "an unknown job is 404 not_found" \
    is 404 'b["error"]["code"] == "not_found"'

# -- what is refused, and why
printf '{"tenant": "%s", "kind": ' "$T" >"$DIR/broken.json"
http POST /v1/jobs "$DIR/broken.json"
check "malformed JSON is 400 bad_json, with where" \
    is 400 'b["error"]["code"] == "bad_json" and "line" in b["error"]["message"]'
job invalid.json <<'J'
{"tenant": "TENANT", "kind": "call", "function": {"backend": "local"}, "input": 1}
J
http POST /v1/jobs "$DIR/invalid.json"
check "a job the schema refuses is 400 invalid_job with the engine's errors and paths" \
    is 400 'b["error"]["code"] == "invalid_job" and b["accepted"] is False and any("/function" in e for e in b["errors"])'
echo '{"kind": "call", "function": {"backend": "local", "name": "add7"}, "input": 1}' >"$DIR/notenant.json"
http POST /v1/jobs "$DIR/notenant.json"
check "a job without a tenant is 400 invalid_job naming /tenant" \
    is 400 'b["error"]["code"] == "invalid_job" and "/tenant" in b["error"]["message"]'
head -c 1100000 /dev/zero | tr '\0' 'x' >"$DIR/huge.json"
http POST /v1/jobs "$DIR/huge.json"
check "a body over 1 MiB is 413" test "$CODE" = 413
http GET /v1/nothing
check "an unknown route is 404 not_found" \
    is 404 'b["error"]["code"] == "not_found"'
http DELETE "/v1/jobs/$T/$jid"
check "a route with the wrong method is 405 method_not_allowed" \
    is 405 'b["error"]["code"] == "method_not_allowed"'

# -- cancel through the API: a map of 20 two-second tasks, one at a time
job long.json <<'J'
{"tenant": "TENANT", "kind": "map", "function": {"backend": "local", "name": "sleepy_sum"},
 "input": {"items": [[1],[2],[3],[4],[5],[6],[7],[8],[9],[10],[11],[12],[13],[14],[15],[16],[17],[18],[19],[20]]},
 "parallelism": 1}
J
http POST /v1/jobs "$DIR/long.json"
lid=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("job_id",""))' "$DIR/body")
# its stream (SSE), followed while it runs: progress events, then done
timeout 90 curl -sN "$BASE/v1/jobs/$T/$lid/stream" >"$DIR/live.sse" 2>/dev/null &
sse_pid=$!
for _ in $(seq 1 300); do grep -q '^event: progress' "$DIR/live.sse" && break; sleep 0.1; done
check "GET .../stream pushes progress events while the job runs" \
    /usr/bin/python3 - "$DIR/live.sse" <<'PY'
import json, sys
blocks = [b for b in open(sys.argv[1]).read().split("\n\n") if b.startswith("event: progress")]
data = json.loads(blocks[0].split("\ndata: ", 1)[1])
assert data["status"] == "running" and data["total"] == 20, data
PY
http POST "/v1/jobs/$T/$lid/cancel"
check "POST .../cancel is 202 with the engine's reply" \
    is 202 'b["accepted"] is True'
"$CB" result --timeout 60 "$T/$lid" >/dev/null 2>"$DIR/cancelled.err"
check "and the job ends cancelled" grep -q "it cancelled" "$DIR/cancelled.err"
wait "$sse_pid"
check "the stream ends with the done event (cancelled) and closes" \
    /usr/bin/python3 - "$DIR/live.sse" <<'PY'
import json, sys
blocks = [b for b in open(sys.argv[1]).read().split("\n\n") if b.strip()]
assert blocks[-1].startswith("event: done"), blocks[-1]
assert json.loads(blocks[-1].split("\ndata: ", 1)[1])["status"] == "cancelled"
PY
http POST "/v1/jobs/$T/$lid/resume"
check "resuming an ended job is refused: 409 refused, the engine's reason" \
    is 409 'b["error"]["code"] == "refused" and b["accepted"] is False'

# -- a client that hangs up while its submission is in flight; the server
# goes on serving (and the engine still takes the job)
job add1.json <<'J'
{"tenant": "TENANT", "job_id": "hangup", "kind": "call", "function": {"backend": "local", "name": "add7"}, "input": 1}
J
/usr/bin/python3 - "$(cat "$DIR/port")" "$DIR/add1.json" <<'PY'
import socket, sys
body = open(sys.argv[2], "rb").read()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n" % len(body) + body)
s.close()  # gone before the answer
PY
check "after a client hung up mid-request, the job still ran" test "$("$CB" result --timeout 60 "$T/hangup")" = 8
http GET /v1/health
check "and the server answers the next request" test "$CODE" = 200
check "cb-api is still running" kill -0 "$API_PID"
# a stream still open when the server stops
timeout 30 curl -sN -D "$DIR/open.hdr" "$BASE/v1/jobs/$T/neverending/stream" >/dev/null 2>&1 &
for _ in $(seq 1 100); do # until its answer has begun (bounded: 5 s)
    grep -q "text/event-stream" "$DIR/open.hdr" 2>/dev/null && break
    sleep 0.05
done
kill -TERM "$API_PID"
wait "$API_PID"
rc=$?
API_PID=
check "cb-api stops on SIGTERM with exit 0 (under ASan: nothing leaked)" test "$rc" -eq 0

if [ $fails -eq 0 ]; then echo "all checks passed"; else
    echo "$fails checks failed"
    echo "--- cb-api log:"; tail -20 "$DIR/api.log"
    exit 1
fi
