#!/usr/bin/env bash
# tests/it_api.sh - cb-api against a real broker (run once per driver by
# tests/run.sh): `cb up --detach` on the given broker starts cb-api too
# (DIR/api_url), and every route of docs/api.md is used through it: health,
# ready, submit (accepted 201, bad JSON, a job the schema refuses, no tenant,
# a body over the limit), a job's state (404 for an unknown one), its result
# (at once after the done event; 409 while it runs, 422 cancelled; a large
# one streamed from storage, outputs kept apart put back in; a damaged object
# cuts the body), the job list (tenant, state, label, pages), tasks (state,
# pages), events (pages, ?until= state), the job's SSE stream (progress
# while it runs, the done event; at once for a late client), a tenant's
# stream, cancel, unknown routes and wrong methods, a client that hangs up.
# Then a second cb-api with tokens: 401 without or with a wrong one, a
# tenant's token sees its own jobs only (404 for another's job, 403 for its
# list, stream or a submission in its name), an operator's sees all; an open
# API off loopback is refused; SIGTERM with a stream open exits 0. Every
# answer is checked against schemas/openapi.json (tests/openapi_check.py).
# Needs CB_TEST_BROKER_URL, CB_TEST_BIN.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
URL=$CB_TEST_BROKER_URL
DIR=$(mktemp -d /tmp/cbapi.XXXXXX)
export CB_DIR="$DIR/.cb" CB_LOG_LEVEL=error CB_STATS_MS=1000 # daemons report every second
unset CB_BROKER_URL
fails=0
T="api$$"
API_PID=

PROM_PID=
stop() {
    [ -n "$API_PID" ] && kill "$API_PID" 2>/dev/null && wait "$API_PID" 2>/dev/null
    [ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null
    "$CB" down --dir "$CB_DIR" >/dev/null 2>&1
    [ "$fails" -eq 0 ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

. "$ROOT/tests/lib.sh" # check

# http METHOD PATH [BODY_FILE]: the status in $CODE, the body in $DIR/body;
# with $TOKEN set, as that bearer. Every answer is kept for the OpenAPI check.
NANS=0
http() {
    local args=(-s -o "$DIR/body" -w '%{http_code} %{content_type}' -X "$1" --max-time 60) out
    [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "@$3")
    [ -n "${TOKEN:-}" ] && args+=(-H "Authorization: Bearer $TOKEN")
    out=$(curl "${args[@]}" "$BASE$2")
    CODE=${out%% *}
    NANS=$((NANS + 1))
    cp "$DIR/body" "$DIR/answer.$NANS"
    /usr/bin/python3 -c 'import json,sys; print(json.dumps({"method": sys.argv[1], "path": sys.argv[2].split("?")[0], "status": int(sys.argv[3]), "type": sys.argv[4], "body": sys.argv[5]}))' \
        "$1" "$2" "$CODE" "${out#* }" "$DIR/answer.$NANS" >>"$DIR/answers.jsonl"
}
# pages PATH EXPRESSION: every page of a listing (after=next until next is
# null, at most 50): the EXPRESSION of each page's body in $ITEMS, their
# number in $pages
pages() {
    local after=""
    ITEMS=""
    pages=0
    while :; do
        http GET "$1${after:+&after=$after}"
        [ "$CODE" = 200 ] || break
        ITEMS="$ITEMS $(jget "$2")"
        pages=$((pages + 1))
        after=$(jget 'b["next"]')
        if [ -z "$after" ] || [ $pages -gt 50 ]; then break; fi
    done
}
# jget EXPRESSION: a value of the last body, printed
jget() {
    /usr/bin/python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(v if v is not None else "")' "$DIR/body" "$1" 2>/dev/null
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
for _ in $(seq 1 100); do [ -s "$CB_DIR/api_url" ] && break; sleep 0.05; done
BASE=$(cat "$CB_DIR/api_url" 2>/dev/null)
check "cb up starts cb-api and writes its URL to DIR/api_url" grep -q '^http://127.0.0.1:[0-9]*$' "$CB_DIR/api_url"
check "cb up prints CB_API_URL" grep -q "^export CB_API_URL=$BASE\$" "$DIR/up.out"

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
# what it cost (docs/engine.md, Cost): the job's figure is the tenant's total so far
check "... with its cost: one invocation at the local account's prices" \
    is 200 'b["cost"]["invocations"] == 1 and b["cost"]["nanos"] >= 200 and b["cost"]["mb_ms"] % 128 == 0'
jcost=$(jget 'json.dumps(b["cost"], sort_keys=True)')
http GET "/v1/tenants/$T/cost"
check "GET /v1/tenants/T/cost is the tenant's total: its one job's" \
    is 200 'b["tenant"] == "'"$T"'" and json.dumps(b["cost"], sort_keys=True) == '"'$jcost'"
http GET /v1/costs
check "GET /v1/costs has every tenant's and account's totals" \
    is 200 'json.dumps(b["tenants"]["'"$T"'"], sort_keys=True) == '"'$jcost'"' and b["backends"]["local"]["nanos"] >= b["tenants"]["'"$T"'"]["nanos"]'
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
http GET "/v1/jobs/$T/$jid/result"
check "GET .../result is the result" is 200 'b == 42'
http GET "/v1/jobs/$T/nosuchjob"
check "an unknown job is 404 not_found" \
    is 404 'b["error"]["code"] == "not_found"'
http GET "/v1/jobs/$T/nosuchjob/result"
check "the result of an unknown job is 404 not_found" \
    is 404 'b["error"]["code"] == "not_found"'
# a client told "done" by the stream asks for the result at once: the store
# may not have folded the end yet, the answer must be the result anyway
job quick.json <<'J'
{"tenant": "TENANT", "job_id": "quick", "kind": "map", "function": {"backend": "local", "name": "add7"},
 "input": {"items": [1, 2, 3, 4, 5, 6, 7, 8]}, "labels": {"team": "blue"}}
J
timeout 60 curl -sN "$BASE/v1/jobs/$T/quick/stream" >"$DIR/quick.sse" 2>/dev/null &
qpid=$!
for _ in $(seq 1 100); do grep -q "text" "$DIR/quick.sse" 2>/dev/null; [ -e "$DIR/quick.sse" ] && break; sleep 0.02; done
http POST /v1/jobs "$DIR/quick.json"
wait "$qpid"
http GET "/v1/jobs/$T/quick/result"
check "GET .../result right after the done event is the result, not 409" \
    is 200 'b == [8, 9, 10, 11, 12, 13, 14, 15]'

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
http GET "/v1/jobs/$T/$lid/result"
check "GET .../result of a running job is 409 not_finished with its state" \
    is 409 'b["error"]["code"] == "not_finished" and b["status"] == "running"'
http GET "/v1/jobs/$T/$lid/tasks?state=running"
check "GET .../tasks?state=running lists the running task (parallelism 1)" \
    is 200 'len(b["tasks"]) == 1 and b["tasks"][0]["status"] == "running" and b["next"] is None'
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
http GET "/v1/jobs/$T/$lid/result"
check "GET .../result of a cancelled job is 422 not_succeeded" \
    is 422 'b["error"]["code"] == "not_succeeded" and b["status"] == "cancelled"'
http POST "/v1/jobs/$T/$lid/resume"
check "resuming an ended job is refused: 409 refused, the engine's reason" \
    is 409 'b["error"]["code"] == "refused" and b["accepted"] is False'
printf '{"job_id": "relive%s"}' "$$" >"$DIR/retry.json"
http POST "/v1/jobs/$T/$lid/retry" "$DIR/retry.json"
check "POST .../retry of a cancelled job is 201 with the new job's id" \
    is 201 'b["accepted"] is True and b["job_id"] == "relive'"$$"'"'
http POST "/v1/jobs/$T/relive$$/cancel"
check "and the new job is a job like any other (cancelled here)" is 202 'b["accepted"] is True'
http POST "/v1/jobs/$T/$lid/retry" "$DIR/retry.json"
check "the same re-run again is the same job: 201, repeated" \
    is 201 'b["accepted"] is True and b.get("repeated") is True'

# -- a client that hangs up while its submission is in flight; the server
# goes on serving (and the engine still takes the job)
job add1.json <<'J'
{"tenant": "TENANT", "job_id": "hangup", "kind": "call", "function": {"backend": "local", "name": "add7"}, "input": 1}
J
/usr/bin/python3 - "${BASE##*:}" "$DIR/add1.json" <<'PY'
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
check "cb-api is still running" kill -0 "$(cat "$CB_DIR/api.pid")"
# -- large results: one object in storage, streamed; outputs kept apart
/usr/bin/python3 - "$T" >"$DIR/big.json" <<'PY'
import json, sys
print(json.dumps({"tenant": sys.argv[1], "job_id": "big", "kind": "map",
                  "function": {"backend": "local", "name": "echo"},
                  "input": {"items": ["x" * 3000 + str(i) for i in range(300)]}}))
PY
/usr/bin/python3 - "$T" >"$DIR/spill.json" <<'PY'
import json, sys
print(json.dumps({"tenant": sys.argv[1], "job_id": "spill", "kind": "map",
                  "function": {"backend": "local", "name": "echo"},
                  "input": {"items": ["y" * 300000 + str(i) for i in range(2)]}}))
PY
http POST /v1/jobs "$DIR/big.json"
http POST /v1/jobs "$DIR/spill.json"
"$CB" result --timeout 120 "$T/big" >"$DIR/big.cli" 2>&1
"$CB" result --timeout 120 "$T/spill" >"$DIR/spill.cli" 2>&1
curl -s --max-time 60 -o "$DIR/big.api" "$BASE/v1/jobs/$T/big/result"
check "a result over 256 KiB (one object in storage) streamed is what cb result prints" \
    /usr/bin/python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); sys.exit(0 if a == b and len(a) == 300 and a[299] == "x"*3000+"299" else 1)' "$DIR/big.api" "$DIR/big.cli"
curl -s --max-time 60 -o "$DIR/spill.api" "$BASE/v1/jobs/$T/spill/result"
check "a result whose outputs are kept apart comes with them put back in" \
    /usr/bin/python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); sys.exit(0 if a == b and a[1] == "y"*300000+"1" else 1)' "$DIR/spill.api" "$DIR/spill.cli"
obj=$(find "$CB_DIR/objects" -path "*/$T/spill/1.*" -type f | head -1)
/usr/bin/python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[1000]=ord("z"); open(p,"wb").write(b)' "$obj"
curl -s --max-time 60 -o "$DIR/damaged.api" "$BASE/v1/jobs/$T/spill/result"
rc=$?
check "an object that does not match its sha256 cuts the body (curl: 18, transfer closed)" test "$rc" = 18
http GET /v1/health
check "and the server serves on" test "$CODE" = 200

# -- the job list: a tenant's, by state, by label, in pages (the store
# folds the large jobs' ends a little after their done messages: wait)
for _ in $(seq 1 300); do
    http GET "/v1/jobs/$T/spill"
    body_has 'b["status"] == "succeeded"' && break
    sleep 0.1
done
http GET "/v1/jobs?tenant=$T"
check "GET /v1/jobs?tenant=T lists the tenant's jobs" \
    is 200 '{"quick", "big", "spill", "hangup"} <= {j["job_id"] for j in b["jobs"]} and all(j["tenant"] == "'"$T"'" for j in b["jobs"]) and b["next"] is None'
njobs=$(jget 'len(b["jobs"])')
http GET "/v1/jobs?tenant=$T&state=cancelled"
check "?state=cancelled: the cancelled jobs only (the long one and its re-run)" \
    is 200 'sorted(j["job_id"] for j in b["jobs"]) == sorted(["'"$lid"'", "relive'"$$"'"])'
http GET "/v1/jobs?tenant=$T&label=team=blue"
check "?label=team=blue: the labelled job only" \
    is 200 '[j["job_id"] for j in b["jobs"]] == ["quick"] and b["jobs"][0]["labels"] == {"team": "blue"}'
pages "/v1/jobs?tenant=$T&limit=2" '" ".join(j["job_id"] for j in b["jobs"])'
seen=$ITEMS
check "pages of 2 (limit, after=next) give every job once ($njobs jobs, $pages pages)" \
    test "$(echo $seen | wc -w)" = "$njobs" -a "$(echo $seen | tr ' ' '\n' | sort -u | wc -l)" = "$njobs" -a "$pages" = $(((njobs + 1) / 2))
http GET "/v1/jobs?limit=0"
check "?limit=0 is 400 bad_request" is 400 'b["error"]["code"] == "bad_request" and "limit" in b["error"]["message"]'
http GET "/v1/jobs?state=sleeping"
check "?state= of no state is 400" is 400 'b["error"]["code"] == "bad_request"'
http GET "/v1/jobs?colour=red"
check "an unknown parameter is 400" is 400 'b["error"]["code"] == "bad_request" and "colour" in b["error"]["message"]'

# -- tasks in pages
http GET "/v1/jobs/$T/quick/tasks?limit=3"
check "GET .../tasks?limit=3: tasks 0-2 with their outputs, next 2" \
    is 200 '[t["index"] for t in b["tasks"]] == [0, 1, 2] and b["tasks"][0]["output"] == [8] and b["next"] == 2'
http GET "/v1/jobs/$T/quick/tasks?limit=3&after=5"
check "?after=5: tasks 6-7, the last page" \
    is 200 '[t["index"] for t in b["tasks"]] == [6, 7] and b["next"] is None'
http GET "/v1/jobs/$T/quick/tasks?state=succeeded"
check "?state=succeeded: all 8" is 200 'len(b["tasks"]) == 8 and b["next"] is None'
http GET "/v1/jobs/$T/quick/tasks?state=failed"
check "?state=failed: none" is 200 'b["tasks"] == [] and b["next"] is None'

# -- events: the timeline from the log, in pages; the state at a point
"$CB" replay --json --job "$T/quick" >"$DIR/quick.log" 2>/dev/null
nev=$(wc -l <"$DIR/quick.log")
pages "/v1/jobs/$T/quick/events?limit=4" '" ".join(str(e["seq"]) for e in b["events"])'
seqs=$ITEMS
check "GET .../events in pages of 4: every event of cb replay once, in log order ($nev)" \
    /usr/bin/python3 -c 'import sys; s=[int(x) for x in sys.argv[1].split()]; sys.exit(0 if len(s) == int(sys.argv[2]) > 4 and s == sorted(set(s)) else 1)' "$seqs" "$nev"
http GET "/v1/jobs/$T/quick/events?limit=1"
check "the first event is the submission" is 200 'b["events"][0]["event"]["type"] == "cb.job.submitted" and b["next"] == b["events"][0]["seq"]'
started=$(/usr/bin/python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["type"] == "cb.job.started":
        print(e["time"])
        break' "$DIR/quick.log")
http GET "/v1/jobs/$T/quick/events?until=$started"
check "?until=TIME: the events up to then and the job's state then (running, nothing done)" \
    is 200 'b["state"]["status"] == "running" and b["state"]["counts"]["succeeded"] == 0 and b["events"][-1]["event"]["type"] == "cb.job.started" and b["next"] is None'
http GET "/v1/jobs/$T/quick/events?until=yesterday"
check "?until= that is neither a time nor a position is 400" is 400 'b["error"]["code"] == "bad_request"'

# -- a tenant's stream: the jobs' events from when it opened
timeout 60 curl -sN -D "$DIR/tenant.hdr" "$BASE/v1/tenants/$T/stream" >"$DIR/tenant.sse" 2>/dev/null &
tpid=$!
for _ in $(seq 1 250); do grep -q "text/event-stream" "$DIR/tenant.hdr" 2>/dev/null && break; sleep 0.02; done
job tenantjob.json <<'J'
{"tenant": "TENANT", "job_id": "viatenant", "kind": "map", "function": {"backend": "local", "name": "add7"}, "input": {"items": [1, 2]}}
J
http POST /v1/jobs "$DIR/tenantjob.json"
# until its done event (a progress event may name it succeeded before)
for _ in $(seq 1 300); do grep -A1 '^event: done' "$DIR/tenant.sse" 2>/dev/null | grep -q '"viatenant"' && break; sleep 0.1; done
kill "$tpid" 2>/dev/null
wait "$tpid" 2>/dev/null
check "GET /v1/tenants/T/stream pushes a new job's done event, and none of the jobs done before" \
    /usr/bin/python3 - "$DIR/tenant.sse" <<'PY'
import json, sys
blocks = [b for b in open(sys.argv[1]).read().split("\n\n") if b.startswith("event: done")]
done = [json.loads(b.split("\ndata: ", 1)[1]) for b in blocks]
assert [d["job_id"] for d in done] == ["viatenant"], [d["job_id"] for d in done]
assert done[0]["result"] == [8, 9], done[0]
PY

# -- a job on a pool (docs/engine.md, Pools): the fixture's "spread" fills
# the local account first; its view says what each member took
job pooljob.json <<'J'
{"tenant": "TENANT", "job_id": "viapool", "kind": "map", "function": {"backend": "spread", "name": "add7"}, "input": {"items": [1, 2, 3]}}
J
http POST /v1/jobs "$DIR/pooljob.json"
check "a job on a pool is accepted" is 201 'b["accepted"] is True'
"$CB" result --timeout 60 "$T/viapool" >"$DIR/viapool.out" 2>&1
check "... and runs on its members (cb result)" /usr/bin/python3 -c \
    'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])) == [8, 9, 10] else 1)' "$DIR/viapool.out"
for _ in $(seq 1 100); do
    http GET "/v1/jobs/$T/viapool"
    body_has 'b["status"] == "succeeded"' && break
    sleep 0.05
done
check "GET /v1/jobs/T/J of a pool's job: each member's dispatched, running and throttled" \
    is 200 'b["members"] == [{"backend": "local", "dispatched": 3, "running": 0, "throttled": 0}]'
http GET "/v1/jobs/$T/quick"
check "... a job on one backend has none" is 200 '"members" not in b'

# -- the daemons' reports (the dashboard's backends page)
http GET /v1/daemons
check "GET /v1/daemons: the engine, the projector and the local adapter, up" \
    is 200 '{d["report"]["daemon"] for d in b["daemons"] if d["up"]} >= {"engine", "projector", "adapter"} and any(d["report"].get("adapter", {}).get("backend") == "local" for d in b["daemons"])'
timeout 4 curl -sN "$BASE/v1/daemons/stream" >"$DIR/daemons.sse" 2>/dev/null
check "GET /v1/daemons/stream pushes the reports as they come" grep -q '^event: report' "$DIR/daemons.sse"

# -- metrics: the Prometheus text format (promtool), and a real Prometheus
# scraping cb-api and answering a PromQL query about a finished job
curl -s --max-time 30 -D "$DIR/metrics.hdr" -o "$DIR/metrics.txt" "$BASE/metrics"
check "GET /metrics is text/plain; version=0.0.4" grep -qi '^Content-Type: text/plain; version=0.0.4' "$DIR/metrics.hdr"
check "promtool check metrics finds nothing wrong" bash -c "promtool check metrics <'$DIR/metrics.txt'"
check "/metrics has the tenant's jobs by state, every daemon up, an adapter's in-flight gauge and latency histogram" \
    /usr/bin/python3 - "$DIR/metrics.txt" "$T" <<'PY'
import re, sys
text, t = open(sys.argv[1]).read(), sys.argv[2]
def value(pattern):
    m = re.search("^" + pattern + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None
assert value(r'cbcore_jobs\{tenant="%s",state="succeeded"\}' % t) >= 4, "succeeded jobs"
assert value(r'cbcore_jobs\{tenant="%s",state="cancelled"\}' % t) == 2, "cancelled jobs"
ups = re.findall(r'^cbcore_daemon_up\{daemon="(\w+)",id="[^"]+"\} 1$', text, re.M)
assert {"engine", "projector", "adapter"} <= set(ups), ups
assert value(r'cbcore_adapter_invocations_in_flight\{daemon="adapter",id="adapter0",backend="local"\}') is not None
assert value(r'cbcore_adapter_invocation_duration_seconds_count\{daemon="adapter",id="adapter0",backend="local"\}') > 0
assert value(r'cbcore_adapter_invocation_duration_seconds_bucket\{daemon="adapter",id="adapter0",backend="local",le="\+Inf"\}') > 0
assert value(r'cbcore_task_dispatch_to_outcome_seconds_count\{daemon="adapter",id="adapter0",backend="local"\}') > 0
assert value("cbcore_projector_lag_events") is not None
assert value(r'cbcore_tenant_cost_total\{tenant="%s"\}' % t) > 0, "the tenant's cost"
assert value(r'cbcore_tenant_invocations_total\{tenant="%s"\}' % t) >= 4, "its invocations"
assert value(r'cbcore_backend_gigabyte_seconds_total\{backend="local"\}') > 0, "the account's GB-s"
PY
PROM_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: cbcore\n    static_configs:\n      - targets: ["%s"]\n' \
    "${BASE#http://}" >"$DIR/prometheus.yml"
prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/prometheus" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >"$DIR/prometheus.log" 2>&1 &
PROM_PID=$!
answer=""
for _ in $(seq 1 600); do # until Prometheus has scraped it (bounded: 60 s)
    answer=$(curl -s --max-time 2 "http://127.0.0.1:$PROM_PORT/api/v1/query" \
        --data-urlencode "query=cbcore_jobs{tenant=\"$T\",state=\"cancelled\"}" 2>/dev/null)
    echo "$answer" | grep -q '"result":\[{' && break
    sleep 0.1
done
kill "$PROM_PID" 2>/dev/null
wait "$PROM_PID" 2>/dev/null
check "a real Prometheus scrapes cb-api: cbcore_jobs{tenant=T,state=cancelled} is 2" \
    /usr/bin/python3 -c 'import json,sys; r=json.loads(sys.argv[1])["data"]["result"]; sys.exit(0 if len(r) == 1 and r[0]["value"][1] == "2" and r[0]["metric"]["job"] == "cbcore" else 1)' "$answer"

# -- tokens: a second cb-api with tokens of two tenants and an operator
U="other$$"
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
printf '{"backends": {"local": {}}, "api": {"tokens": [
  {"tenant": "%s", "sha256": "%s", "name": "alice"},
  {"tenant": "%s", "sha256": "%s", "name": "bob"},
  {"role": "operator", "sha256": "%s"}]}}\n' \
    "$T" "$(sha alice-token)" "$U" "$(sha bob-token)" "$(sha ops-token)" >"$DIR/tokens.json"
"$CB_TEST_BIN/cb-api" --broker "$URL" --store "$CB_DIR/store" --listen 127.0.0.1:0 \
    --config "$DIR/tokens.json" --port-file "$DIR/port" 2>"$DIR/api.log" &
API_PID=$!
for _ in $(seq 1 200); do [ -s "$DIR/port" ] && break; sleep 0.05; done
BASE="http://127.0.0.1:$(cat "$DIR/port" 2>/dev/null)"
http GET "/v1/jobs/$T/quick"
check "with tokens configured, no token is 401 unauthorized" is 401 'b["error"]["code"] == "unauthorized"'
check "... saying how (WWW-Authenticate: Bearer)" \
    bash -c "curl -s -D - -o /dev/null '$BASE/v1/jobs/$T/quick' | grep -qi '^WWW-Authenticate: Bearer'"
TOKEN=wrong-token http GET "/v1/jobs/$T/quick"
check "an unknown token is 401" is 401 'b["error"]["code"] == "unauthorized"'
http GET /v1/health
check "health needs no token" test "$CODE" = 200
TOKEN=alice-token http GET "/v1/jobs/$T/quick"
check "a tenant's token reads its tenant's job" is 200 'b["job_id"] == "quick"'
TOKEN=bob-token http GET "/v1/jobs/$T/quick"
check "another tenant's token gets 404 for it (not told it exists)" is 404 'b["error"]["code"] == "not_found"'
TOKEN=bob-token http GET "/v1/jobs/$T/quick/result"
check "... and for its result" is 404 'b["error"]["code"] == "not_found"'
TOKEN=bob-token http POST "/v1/jobs/$T/quick/cancel"
check "... and for a command on it" is 404 'b["error"]["code"] == "not_found"'
TOKEN=bob-token http GET "/v1/jobs?tenant=$T"
check "listing another tenant's jobs is 403 forbidden" is 403 'b["error"]["code"] == "forbidden"'
TOKEN=bob-token http GET "/v1/tenants/$T/stream"
check "another tenant's stream is 403 forbidden" is 403 'b["error"]["code"] == "forbidden"'
TOKEN=bob-token http POST /v1/jobs "$DIR/add7.json"
check "submitting in another tenant's name is 403 forbidden" is 403 'b["error"]["code"] == "forbidden"'
echo '{"job_id": "bobs", "kind": "call", "function": {"backend": "local", "name": "add7"}, "input": 1}' >"$DIR/bob.json"
TOKEN=bob-token http POST /v1/jobs "$DIR/bob.json"
check "a job without a tenant is the token's tenant's" is 201 'b["accepted"] is True and b["job_id"] == "bobs"'
check "... and runs there" test "$("$CB" result --timeout 60 "$U/bobs")" = 8
TOKEN=bob-token http GET /v1/jobs
check "a tenant's list is its own jobs only" is 200 '[j["job_id"] for j in b["jobs"]] == ["bobs"]'
TOKEN=bob-token http GET /metrics
check "the metrics need an operator's token: a tenant's is 403" is 403 'b["error"]["code"] == "forbidden"'
TOKEN=bob-token http GET "/v1/tenants/$T/cost"
check "another tenant's cost is 403 forbidden" is 403 'b["error"]["code"] == "forbidden"'
TOKEN=bob-token http GET /v1/costs
check "every tenant's costs need an operator's token: a tenant's is 403" is 403 'b["error"]["code"] == "forbidden"'
TOKEN=alice-token http GET "/v1/tenants/$T/cost"
check "a tenant's token reads its own cost" is 200 'b["cost"]["invocations"] >= 1'
TOKEN=ops-token http GET /v1/costs
check "an operator's token reads every tenant's costs" is 200 '"'"$T"'" in b["tenants"] and "local" in b["backends"]'
check "... and an operator's reads them" \
    bash -c "curl -s -H 'Authorization: Bearer ops-token' '$BASE/metrics' | grep -q '^cbcore_daemon_up'"
TOKEN=ops-token http GET "/v1/jobs?limit=1000"
check "an operator's token lists every tenant" \
    is 200 '{j["tenant"] for j in b["jobs"]} >= {"'"$T"'", "'"$U"'"}'
"$CB_TEST_BIN/cb-api" --broker "$URL" --store "$CB_DIR/store" --listen 0.0.0.0:0 >/dev/null 2>"$DIR/open.err"
rc=$?
check "an open API (no token) off loopback is refused, saying why" \
    bash -c "test $rc -ne 0 && grep -q loopback '$DIR/open.err'"

# -- every answer above, against schemas/openapi.json
check "every answer matches schemas/openapi.json" \
    /usr/bin/python3 "$ROOT/tests/openapi_check.py" "$ROOT/schemas" "$DIR/answers.jsonl"

# a stream still open when the server stops
timeout 30 curl -sN -D "$DIR/open.hdr" -H "Authorization: Bearer alice-token" "$BASE/v1/jobs/$T/neverending/stream" >/dev/null 2>&1 &
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
    echo "--- cb-api (cb up) log:"; tail -20 "$CB_DIR/logs/api.log"
    echo "--- cb-api (tokens) log:"; tail -20 "$DIR/api.log"
    exit 1
fi
