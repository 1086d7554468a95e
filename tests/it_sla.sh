#!/usr/bin/env bash
# tests/it_sla.sh - the SLA evaluator (cb-sla, docs/sla.md) on a `cb up`
# stack, once per driver (tests/run.sh): a job's own guarantee breached by
# slow tasks (cb.sla.violated in the log within 1 s of each task's outcome,
# with the observed time; the notification on cb.sla.<tenant>.<agreement>
# through `cb sla watch`); repetitions (no breach after 2 violations, one at
# the 3rd); a job-level guarantee; agreements managed with `cb sla` (a bad
# constraint and a template without a value refused; a tenant-wide
# p95([makespan]) < 2000 over a window breached and back in compliance,
# cb.sla.violated/recovered in the log, the notifications, signed webhook
# POSTs to a receiver that fails the first one, `cb sla show`; stop, start,
# delete; a periodic guarantee's breach on the tenant's _sla subject); an
# at-risk warning before a makespan bound passes; SLA-aware ranking meeting
# a deadline that FIFO misses on a backend two wide; cb-sla killed with
# SIGKILL in the middle of a job: every breach is in the log once, none
# lost, the agreements rebuilt from the log.
# CB_TEST_PARTITIONS=P (tests/run.sh: 3) runs it all on a log of P
# partitions: cb-sla reads each partition's log and appends a job's
# breaches to its partition's (docs/scale.md).
# Needs CB_TEST_BROKER_URL, CB_TEST_BIN.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
DIR=$(mktemp -d /tmp/cbsla.XXXXXX)
export CB_DIR="$DIR/.cb" CB_LOG_LEVEL=error
unset CB_BROKER_URL CB_CONFIG CB_API_URL
PY=/usr/bin/python3
T="sla$$"
fails=0
WATCH_PID=

stop() {
    [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null
    "$CB" down --dir "$CB_DIR" >/dev/null 2>&1
    [ "$fails" -eq 0 ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

. "$ROOT/tests/lib.sh" # check

# the webhook secrets cb-sla reads from $CB_DIR/sla-secrets.json
mkdir -p "$CB_DIR" && printf '{"ops-hook": "s3cret-%s"}\n' "$T" >"$CB_DIR/sla-secrets.json"
chmod 600 "$CB_DIR/sla-secrets.json"
# cb-sla asks this Prometheus server (started once cb-api is up) for [query]
PROM_PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export CB_PROMETHEUS_URL="http://127.0.0.1:$PROM_PORT"
PROM_PID=
# the local backend two invocations wide: jobs compete for it (section 7)
P=${CB_TEST_PARTITIONS:-1}
printf '{"broker": {"partitions": %d}, "backends": {"local": {"max_concurrency": 2}}}\n' "$P" >"$DIR/backends.json"
if ! "$CB" up --detach --dir "$CB_DIR" --broker "$CB_TEST_BROKER_URL" --config "$DIR/backends.json" >"$DIR/up.out" 2>&1; then
    echo "FAIL cb up"; cat "$DIR/up.out"; exit 1
fi
API=$(cat "$CB_DIR/api_url")

# job JOB ITEMS GUARANTEES [PARALLELISM]: submit a map of sleep_ms and wait for its end
job() {
    printf '{"tenant": "%s", "job_id": "%s", "kind": "map", "function": {"backend": "local", "name": "sleep_ms"}, "input": {"items": %s}, "parallelism": %s, "sla": {"guarantees": %s}}\n' \
        "$T" "$1" "$2" "${4:-100}" "$3" >"$DIR/$1.json"
    "$CB" submit "$DIR/$1.json" --wait --timeout 60 >"$DIR/$1.done" 2>"$DIR/$1.err"
    grep -q '"status":"succeeded"' "$DIR/$1.done" || { echo "job $1 did not succeed:"; cat "$DIR/$1.err" "$DIR/$1.done"; return 1; }
}

# notes FILE JOB N MIN_OBSERVED: the N notifications of FILE (cb sla watch)
# for JOB are its breaches: distinct ordinals 1..N, each within 1 s of the
# outcome of the task it names (the job's timeline), observed >= MIN
notes() {
    $PY - "$CB" "$T" "$1" "$2" "$3" "$4" >"$DIR/$2.check" 2>&1 <<'PY'
import json, subprocess, sys
from datetime import datetime
cb, tenant, path, job, want, least = sys.argv[1:5] + [int(sys.argv[5]), float(sys.argv[6])]
def t(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
notes = [json.loads(l) for l in open(path) if l.strip()]
mine = [n for n in notes if n["job"] == job]
print("notes for", job, [(n["breach"]["ordinal"], n["breach"].get("task")) for n in mine])
assert len(mine) == want, "%d breaches, want %d" % (len(mine), want)
assert sorted(n["breach"]["ordinal"] for n in mine) == list(range(1, want + 1)), "ordinals"
out = subprocess.run([cb, "replay", "--job", "%s/%s" % (tenant, job), "--json"],
                     capture_output=True, text=True, timeout=60).stdout
outcome = {}
for e in map(json.loads, out.splitlines()):  # a command's successes may share an event
    parts = [e["data"]] if e["type"] == "cb.task.succeeded" else \
        e["data"]["tasks"] if e["type"] == "cb.tasks.succeeded" else []
    for p in parts:
        outcome[p["task"]] = t(e["time"])
for n in mine:
    b = n["breach"]
    assert b["observed"] >= least, b
    if b["level"] == "task":
        lag = t(n["time"]) - outcome[b["task"]]
        assert 0 <= lag < 1.0, "breach %s %.3f s after its task" % (n["id"], lag)
PY
    local rc=$?
    [ $rc -eq 0 ] || cat "$DIR/$2.check"
    return $rc
}

# violations JOB N: wait (up to 20 s) until the store counts N breaches of
# the job (the projector folds every cb.sla.violated, a repeated one twice)
violations() {
    local got=
    for _ in $(seq 400); do
        got=$("$CB" status "$T/$1" --json 2>/dev/null | $PY -c 'import json,sys; print(json.load(sys.stdin)["tasks"]["sla_violations"])' 2>/dev/null)
        [ "$got" = "$2" ] && return 0
        sleep 0.05
    done
    echo "the store counts ${got:-nothing} breaches of $1, want $2"
    return 1
}

# watch FILE COUNT: cb sla watch in the background until it has COUNT notes
watch() {
    "$CB" sla watch "$T" --count "$2" --timeout-ms 60000 >"$1" 2>"$1.err" &
    WATCH_PID=$!
    for _ in $(seq 200); do grep -q watching "$1.err" && break; sleep 0.05; done
    grep -q "watching cb.sla.$T.>" "$1.err"
}

watched() { # wait for the watcher to end; 0 when it got its count
    local rc
    wait "$WATCH_PID"; rc=$?; WATCH_PID=
    return $rc
}

# 1. [execution_time] < 100 over tasks of 300 ms: two breaches, notified
check "cb sla watch subscribed" watch "$DIR/w1" 2
job slow '[300, 300]' '[{"name": "fast", "constraint": "[execution_time] < 100"}]'
check "the job itself succeeds" grep -q '"status":"succeeded"' "$DIR/slow.done"
check "both breaches notified" watched
check "... each within 1 s of its task's outcome, about 300 ms observed" notes "$DIR/w1" slow 2 250
check "... and in the log (the store counts 2)" violations slow 2
check "... with the guarantee and its constraint" grep -q '"guarantee":"fast","constraint":"\[execution_time\] < 100"' "$DIR/w1"

# 2. repetitions 3: two violations are no breach, the third is (one watcher
# for both jobs: a breach of the first would come before the second's)
check "watching again" watch "$DIR/w2" 1
job reps2 '[300, 300]' '[{"name": "fast", "constraint": "[execution_time] < 100", "repetitions": 3}]' 1
job reps3 '[300, 300, 300]' '[{"name": "fast", "constraint": "[execution_time] < 100", "repetitions": 3}]' 1
check "a breach notified" watched
check "repetitions 3: no breach after 2 violations" notes "$DIR/w2" reps2 0 0
check "repetitions 3: a breach at the 3rd" notes "$DIR/w2" reps3 1 250

# 3. a job-level guarantee, and one that holds (judged at the job's end)
check "watching again" watch "$DIR/w3" 1
job span '[400]' '[{"name": "quick", "constraint": "[makespan] < 200"}, {"name": "ok", "constraint": "[failure_rate] <= 0"}]'
check "[makespan] < 200 of a 400 ms job: its breach notified" watched
check "... for the guarantee quick only, with the makespan observed" $PY -c '
import json, sys
n = [json.loads(l) for l in open(sys.argv[1])]
assert len(n) == 1 and n[0]["job"] == "span", n
b = n[0]["breach"]
assert b["guarantee"] == "quick" and b["level"] == "job" and b["observed"] >= 400, b' "$DIR/w3"
check "... and in the log (the store counts 1)" violations span 1

# 4. a bad constraint is refused at submission with its position
printf '{"tenant": "%s", "kind": "call", "function": {"backend": "local", "name": "noop"}, "input": 1, "sla": {"guarantees": [{"name": "g", "constraint": "[exec_time] < 1"}]}}\n' "$T" >"$DIR/bad.json"
"$CB" submit "$DIR/bad.json" >"$DIR/bad.out" 2>&1
check "an unknown metric is refused at submission, with its position" grep -q '/sla/guarantees/0/constraint: at 1: unknown metric \\"exec_time\\"\|/sla/guarantees/0/constraint: at 1: unknown metric "exec_time"' "$DIR/bad.out"

# 5. agreements of their own (cb sla), a webhook receiver that checks signatures
HOOK_PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$PY - "$HOOK_PORT" "s3cret-$T" "$DIR/hooks" <<'PY' &
import hashlib, hmac, http.server, json, sys
port, secret, out = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
first = [True]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        rec = {"valid": hmac.compare_digest(want, self.headers.get("X-Cb-Signature", "")),
               "event": self.headers.get("X-Cb-Event"), "delivery": self.headers.get("X-Cb-Delivery"),
               "failed": first[0], "body": json.loads(body)}
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        code = 500 if first[0] else 204  # the first POST fails: it must be tried again
        first[0] = False
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
HOOK_PID=$!
trap 'kill $HOOK_PID $PROM_PID 2>/dev/null; stop' EXIT

agreement() { # FILE ID CONSTRAINT SCOPE_LABEL [EXTRA guarantee JSON]
    printf '{"id": "%s", "name": "%s", "scope": {"labels": {"suite": "%s"}}, "notify": {"webhooks": [{"url": "http://127.0.0.1:%s/hook", "secret": "ops-hook"}]}, "details": {"id": "%s", "type": "agreement", "name": "%s", "guarantees": [{"name": "g", "constraint": "%s"%s}]}}\n' \
        "$2" "$2" "$4" "$HOOK_PORT" "$2" "$2" "$3" "${5:-}" >"$1"
}
labelled() { # JOB LABEL ITEMS: a map of sleep_ms with labels.suite, waited for
    printf '{"tenant": "%s", "job_id": "%s", "kind": "map", "labels": {"suite": "%s"}, "function": {"backend": "local", "name": "sleep_ms"}, "input": {"items": %s}}\n' \
        "$T" "$1" "$2" "$3" >"$DIR/$1.json"
    "$CB" submit "$DIR/$1.json" --wait --timeout 60 >"$DIR/$1.done" 2>"$DIR/$1.err"
    grep -q '"status":"succeeded"' "$DIR/$1.done" || { echo "job $1 did not succeed:"; cat "$DIR/$1.err" "$DIR/$1.done"; return 1; }
}
slacmd() { # cb sla ... for the tenant, its answer kept in $DIR/sla.out
    "$CB" sla "$@" --tenant "$T" >>"$DIR/sla.out"
}
types() { # JOB: the event types of the job's log, one per line
    "$CB" replay --job "$T/$1" --json --to-end 2>/dev/null | $PY -c 'import json,sys; [print(json.loads(l)["type"], json.loads(l)["id"]) for l in sys.stdin if l.strip()]'
}

agreement "$DIR/bad-agreement.json" badc '[makespan] <' tw
"$CB" sla create "$DIR/bad-agreement.json" --tenant "$T" >"$DIR/badc.out" 2>&1
check "an agreement with a bad constraint is refused, with its path and position" grep -q 'refused: /details/guarantees/0/constraint: at 12: expected an operand, found the end' "$DIR/badc.out"
printf '{"id": "tpl", "name": "p95 under {{ms}} ms", "scope": {"labels": {"suite": "{{suite}}"}}, "details": {"id": "tpl", "type": "template", "name": "tpl", "guarantees": [{"name": "g", "constraint": "p95([makespan]) < {{ms}}"}]}}\n' >"$DIR/tpl.json"
check "a template is created" slacmd create "$DIR/tpl.json"
"$CB" sla create --template tpl --id fromtpl --set suite=none --tenant "$T" >"$DIR/tplbad.out" 2>&1
check "an agreement from a template without a value is refused, naming it" grep -q 'template \\"tpl\\": no value for {{ms}}\|template "tpl": no value for {{ms}}' "$DIR/tplbad.out"
check "an agreement from a template with its values" slacmd create --template tpl --id fromtpl --set ms=1500 --set suite=none
check "... has the value in its constraint" sh -c '"$1" sla show fromtpl --tenant "$2" | grep -q "p95(\[makespan\]) < 1500"' _ "$CB" "$T"

# a job that names the template and its values gets its own guarantees
# from it; one naming a template the tenant has not is told so
tjob() { # JOB TEMPLATE VALUES
    printf '{"tenant": "%s", "job_id": "%s", "kind": "call", "function": {"backend": "local", "name": "sleep_ms"}, "input": 50, "sla": {"template": {"id": "%s", "values": %s}}}\n' \
        "$T" "$1" "$2" "$3" >"$DIR/$1.json"
    "$CB" submit "$DIR/$1.json" --wait --timeout 60 >"$DIR/$1.done" 2>&1
}
check "watching" watch "$DIR/w10" 2
check "a job naming the template with its values" tjob tjob tpl '{"ms": 10, "suite": "none"}'
check "a job naming a template the tenant has not" tjob njob nothing '{}'
check "its breach and the other's refusal notified" watched
check "... the first judged by the template's guarantee, the second not evaluated" $PY -c '
import json, sys
n = {x["job"]: x for x in map(json.loads, open(sys.argv[1]))}
v, r = n["tjob"], n["njob"]
assert v["kind"] == "violated" and v["agreement"] == "job-tjob" and v["breach"]["constraint"] == "p95([makespan]) < 10" and v["breach"]["threshold"] == 10, v
assert r["kind"] == "refused" and r["error"] == "/sla/template/id: tenant \"%s\" has no template \"nothing\"" % sys.argv[2], r' "$DIR/w10" "$T"

agreement "$DIR/tw.json" tw 'p95([makespan]) < 2000' tw ', "window": {"count": 2}'
check "a tenant-wide agreement is created" slacmd create "$DIR/tw.json"
check "watching the agreements" watch "$DIR/w5" 3
check "a slow job (2.2 s)" labelled tw1 tw '[2200]'
check "a quick one: p95 of the last two still over" labelled tw2 tw '[1]'
check "another quick one: back in compliance" labelled tw3 tw '[1]'
check "two breaches and a recovery notified" watched
check "... in order: violated 1, violated 2, recovered 2, with the makespans observed" $PY -c '
import json, sys
n = [json.loads(l) for l in open(sys.argv[1])]
got = [(x["kind"], x["job"], x["breach"]["ordinal"]) for x in n]
assert got == [("violated", "tw1", 1), ("violated", "tw2", 2), ("recovered", "tw3", 2)], got
assert n[0]["breach"]["observed"] >= 2200 and n[2]["breach"]["observed"] < 2000, n' "$DIR/w5"
types tw3 >"$DIR/tw3.types"
check "cb.sla.recovered is in the log of the job that brought compliance back" grep -q "^cb.sla.recovered $T/tw/g/2/recovered" "$DIR/tw3.types"
hooks_ok() {
    $PY - "$DIR/hooks" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert all(r["valid"] for r in recs), "a signature did not verify"
ok = [r for r in recs if not r["failed"]]
got = sorted((r["event"], r["body"]["breach"]["ordinal"]) for r in ok)
assert got == [("recovered", 2), ("violated", 1), ("violated", 2)], got
retried = recs[0]["delivery"]
assert [r["delivery"] for r in recs].count(retried) == 2, "the failed POST was not tried again"
PY
}
check "the webhook got the three, signed (HMAC-SHA256), the failed POST tried again" wait_for 200 hooks_ok
check "cb sla show: 2 breaches, compliant, the recent history" sh -c '"$1" sla show tw --tenant "$2" >"$3" && '"$PY"' -c "
import json, sys
a = json.load(open(sys.argv[1]))
assert a[\"breaches\"] == 2 and a[\"compliant\"] is True and a[\"state\"] == \"started\", a
assert [r[\"kind\"] for r in a[\"recent\"]] == [\"violated\", \"violated\", \"recovered\"], a[\"recent\"]
assert a[\"guarantees\"][0][\"evaluations\"] == 3, a" "$3"' _ "$CB" "$T" "$DIR/tw.show"
check "stop" slacmd stop tw
check "a slow job while stopped" labelled tw4 tw '[2200]'
check "... is not evaluated" sh -c '"$1" sla show tw --tenant "$2" | grep -q "\"evaluations\": 3"' _ "$CB" "$T"
check "start" slacmd start tw
check "delete" slacmd delete tw
"$CB" sla show tw --tenant "$T" >"$DIR/gone.out" 2>&1
check "a deleted agreement is gone" grep -q "has no agreement \\\"tw\\\"\|has no agreement \"tw\"" "$DIR/gone.out"

# the issue's first scenario with an agreement of its own: tasks of 300 ms
# under [execution_time] < 100: each breach in the job's log within 1 s of
# its task, notified, posted to the webhook with the threshold, in show
agreement "$DIR/exec.json" exec '[execution_time] < 100' exec
check "an agreement over task execution times" slacmd create "$DIR/exec.json"
check "watching" watch "$DIR/w9" 2
check "a job of two 300 ms tasks" labelled execjob exec '[300, 300]'
check "both breaches notified" watched
check "... each within 1 s of its task's outcome" notes "$DIR/w9" execjob 2 250
exec_hooks() {
    $PY - "$DIR/hooks" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
mine = [r for r in recs if r["body"]["agreement"] == "exec" and not r["failed"]]
assert len(mine) == 2 and all(r["valid"] and r["event"] == "violated" for r in mine), mine
assert all(r["body"]["job"] == "execjob" and r["body"]["breach"]["threshold"] == 100 and r["body"]["breach"]["observed"] >= 250 for r in mine), mine
PY
}
check "... both posted to the webhook, signed, with the observed time and the threshold" wait_for 200 exec_hooks
check "... and in cb sla show" sh -c '"$1" sla show exec --tenant "$2" | '"$PY"' -c "
import json, sys
a = json.load(sys.stdin)
assert a[\"breaches\"] == 2 and [(r[\"kind\"], r[\"job\"]) for r in a[\"recent\"]] == [(\"violated\", \"execjob\")] * 2, a"' _ "$CB" "$T"
check "delete it" slacmd delete exec

# an agreement valid for two seconds: cb-sla terminates it at its expiration
$PY - "$DIR/brief.json" <<'PY'
import json, sys
from datetime import datetime, timedelta, timezone
now = datetime.now(timezone.utc)
iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
json.dump({"id": "brief", "name": "brief", "scope": {"labels": {"suite": "brief"}},
           "details": {"id": "brief", "type": "agreement", "name": "brief",
                       "creation": iso(now - timedelta(seconds=1)), "expiration": iso(now + timedelta(seconds=2)),
                       "guarantees": [{"name": "g", "constraint": "[makespan] < 1000"}]}}, open(sys.argv[1], "w"))
PY
check "an agreement that expires in 2 s" slacmd create "$DIR/brief.json"
terminated() { "$CB" sla show brief --tenant "$T" 2>/dev/null | grep -q '"state": "terminated"'; }
check "... is terminated at its expiration (cb.sla.terminated)" wait_for 200 terminated
check "... and cannot be started again" sh -c '! "$1" sla start brief --tenant "$2" 2>/dev/null' _ "$CB" "$T"
check "delete it" slacmd delete brief

# a periodic guarantee (every 500 ms over the window): its breach belongs to
# no job, it is on the tenant's _sla subject
agreement "$DIR/per.json" per '[makespan] < 1' per ', "period_ms": 500, "window": {"count": 1}'
check "a periodic agreement is created" slacmd create "$DIR/per.json"
check "watching" watch "$DIR/w6" 1
check "a job it watches" labelled per1 per '[50]'
check "the periodic breach notified" watched
check "... as no job's: on the tenant's _sla subject" grep -q '"job":"_sla"' "$DIR/w6"
check "stop the periodic agreement" slacmd stop per
types _sla >"$DIR/sla.log"
check "the agreement's life and its breach in the _sla log" sh -c 'grep -q "^cb.sla.created $1/per/1/created" "$2" && grep -q "^cb.sla.violated $1/per/g/1/violated" "$2" && grep -q "^cb.sla.stopped $1/per/2/stopped" "$2" && grep -q "^cb.sla.deleted $1/tw/" "$2" && grep -q "^cb.sla.terminated $1/brief/2/terminated" "$2"' _ "$T" "$DIR/sla.log"
printf '{"tenant": "%s", "job_id": "_sla", "kind": "call", "function": {"backend": "local", "name": "noop"}, "input": 1}\n' "$T" >"$DIR/reserved.json"
"$CB" submit "$DIR/reserved.json" >"$DIR/reserved.out" 2>&1
check "a job id that begins with _ is refused" grep -q "/job_id" "$DIR/reserved.out"

# the same through cb-api's routes (/v1/tenants/T/slas), each answer
# checked against schemas/openapi.json; the accounting in /metrics
check "the REST routes of agreements" $PY - "$API" "$T" "$DIR/answers.jsonl" "$DIR" <<'PY'
import json, sys, urllib.error, urllib.request
api, tenant, answers, d = sys.argv[1:5]
n = [0]
def call(method, path, body=None):
    req = urllib.request.Request(api + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, text, ctype = r.status, r.read(), r.headers.get("Content-Type")
    except urllib.error.HTTPError as e:
        status, text, ctype = e.code, e.read(), e.headers.get("Content-Type")
    n[0] += 1
    f = "%s/answer%d.json" % (d, n[0])
    open(f, "wb").write(text)
    with open(answers, "a") as out:
        out.write(json.dumps({"method": method, "path": path, "status": status, "type": ctype, "body": f}) + "\n")
    return status, json.loads(text) if text else None
base = "/v1/tenants/%s/slas" % tenant
spec = {"id": "rest", "name": "rest", "scope": {"labels": {"suite": "rest"}},
        "details": {"id": "rest", "type": "agreement", "name": "rest",
                    "guarantees": [{"name": "g", "constraint": "[makespan] < 60000"}]}}
s, b = call("POST", base, spec); assert s == 201 and b["id"] == "rest" and b["version"] == 1, (s, b)
s, b = call("POST", base, spec); assert s == 201 and b["version"] == 2, (s, b)  # an update
bad = json.loads(json.dumps(spec)); bad["details"]["guarantees"][0]["constraint"] = "[makespan] <"
s, b = call("POST", base, bad); assert s == 400 and "at 12" in b["error"]["message"], (s, b)
s, b = call("POST", base, {"id": "x"}); assert s == 400 and b["errors"], (s, b)  # schema errors listed
s, b = call("POST", base, {"template": "tpl", "id": "rest2", "values": {"ms": 900, "suite": "none"}})
assert s == 201 and b["guarantees"][0]["constraint"] == "p95([makespan]) < 900", (s, b)
s, b = call("GET", base); assert s == 200 and {"rest", "rest2", "tpl"} <= {a["id"] for a in b["agreements"]}, (s, b)
s, b = call("GET", base + "/rest"); assert s == 200 and b["spec"]["id"] == "rest" and b["recent"] == [], (s, b)
s, b = call("POST", base + "/rest/stop"); assert s == 200 and b["state"] == "stopped", (s, b)
s, b = call("POST", base + "/rest/start"); assert s == 200 and b["state"] == "started", (s, b)
s, b = call("POST", base + "/tpl/start"); assert s == 409 and b["error"]["code"] == "conflict", (s, b)  # a template is never evaluated
s, b = call("DELETE", base + "/rest2"); assert s == 200 and b["event"].endswith("/deleted"), (s, b)
s, b = call("GET", base + "/rest2"); assert s == 404, (s, b)
s, b = call("DELETE", base + "/nothing"); assert s == 404 and b["error"]["code"] == "not_found", (s, b)
PY
check "... every answer as schemas/openapi.json says" $PY "$ROOT/tests/openapi_check.py" "$ROOT/schemas" "$DIR/answers.jsonl"
metrics_ok() {
    $PY - "$API" "$T" <<'PY'
import re, sys, urllib.request
api, tenant = sys.argv[1:3]
text = urllib.request.urlopen(api + "/metrics", timeout=10).read().decode()
def value(name, agreement):
    m = re.search(r'^%s\{tenant="%s",agreement="%s",guarantee="g",state="[a-z]+"\} (\S+)$' % (name, tenant, agreement), text, re.M)
    assert m, "no %s for %s" % (name, agreement)
    return float(m.group(1))
assert value("cbcore_sla_guarantee_breaches_total", "per") >= 1
assert value("cbcore_sla_compliant", "per") == 0
assert value("cbcore_sla_evaluations_total", "rest") == 0
assert re.search(r"^cbcore_sla_events_total\{", text, re.M)
PY
}
check "/metrics: each guarantee's evaluations, breaches and compliance" wait_for 300 metrics_ok

# a real Prometheus (Debian's) scrapes cb-api's /metrics every second; a
# guarantee on [query] asks it every 500 ms: the tenant's succeeded jobs
# (more than 3 by now) break [query] < 3, a breach of no job
printf 'global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: cbcore\n    static_configs:\n      - targets: ["%s"]\n' \
    "${API#http://}" >"$DIR/prometheus.yml"
prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/prometheus" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >"$DIR/prometheus.log" 2>&1 &
PROM_PID=$!
$PY - "$T" "$DIR/promq.json" <<'PY'
import json, sys
t, out = sys.argv[1:3]
g = {"name": "g", "constraint": "[query] < 3", "period_ms": 500,
     "query": 'sum(cbcore_jobs{tenant="%s",state="succeeded"})' % t}
json.dump({"id": "promq", "name": "promq", "details": {"id": "promq", "type": "agreement", "name": "promq", "guarantees": [g]}}, open(out, "w"))
PY
check "watching" watch "$DIR/w8" 1
check "an agreement on a Prometheus query" slacmd create "$DIR/promq.json"
check "its breach notified once Prometheus has scraped cb-api" watched
check "... a query-level breach of no job, the count Prometheus gave" $PY - "$DIR/w8" "$PROM_PORT" "$T" <<'PY'
import json, sys, urllib.parse, urllib.request
path, port, tenant = sys.argv[1:4]
n = [json.loads(l) for l in open(path)]
b = n[0]["breach"]
assert n[0]["job"] == "_sla" and n[0]["agreement"] == "promq" and b["level"] == "query", n
q = urllib.parse.urlencode({"query": 'sum(cbcore_jobs{tenant="%s",state="succeeded"})' % tenant})
now = float(json.load(urllib.request.urlopen("http://127.0.0.1:%s/api/v1/query?%s" % (port, q)))["data"]["result"][0]["value"][1])
assert 3 <= b["observed"] <= now, (b, now)
PY
check "stop it" slacmd stop promq

# 6. at risk: 8 tasks of 300 ms one after the other under [makespan] < 1500
# are predicted to take 2.4 s: a warning before 1.5 s have passed, then the breach
check "watching" watch "$DIR/w7" 2
job risky '[300, 300, 300, 300, 300, 300, 300, 300]' '[{"name": "quick", "constraint": "[makespan] < 1500"}]' 1
check "an at-risk warning and the breach notified" watched
check "... the warning before the bound passed, predicting more than 1.5 s" $PY - "$CB" "$T" "$DIR/w7" <<'PY'
import json, subprocess, sys
from datetime import datetime
cb, tenant, path = sys.argv[1:4]
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
n = [json.loads(l) for l in open(path)]
assert [x["kind"] for x in n] == ["at_risk", "violated"], n
st = json.loads(subprocess.run([cb, "status", "%s/risky" % tenant, "--json"], capture_output=True, text=True).stdout)
early = t(n[0]["time"]) - t(st["times"]["submitted"])
assert early < 1.5, "warned %.3f s after submission" % early
assert n[0]["breach"]["predicted"] > 1500 and n[0]["breach"]["bound"] == 1500, n[0]
assert n[0]["id"] == "%s/job-risky/quick/risky/at_risk" % tenant, n[0]["id"]
PY

# 7. SLA-aware ranking: on the backend two wide, a job of 2 tasks submitted
# behind one of 16 (250 ms each) waits its turn under FIFO (no SLA: ~2 s);
# with [makespan] < 1500 its deadline ranks it first and it meets it
makespan() { # JOB: its makespan in ms
    "$CB" status "$T/$1" --json | $PY -c '
import json, sys
from datetime import datetime
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
j = json.load(sys.stdin)
print(int((t(j["times"]["finished"]) - t(j["times"]["submitted"])) * 1000))'
}
race() { # SUFFIX GUARANTEES: the long job, then the short one, waited for
    printf '{"tenant": "%s", "job_id": "long%s", "kind": "map", "function": {"backend": "local", "name": "sleep_ms"}, "input": {"items": [250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250]}}\n' "$T" "$1" >"$DIR/long$1.json"
    "$CB" submit "$DIR/long$1.json" >/dev/null 2>&1 || return 1
    job "short$1" '[250, 250]' "$2" || return 1
    finished "long$1"
}
finished() { # JOB: wait (up to 30 s) until it succeeded
    for _ in $(seq 600); do
        "$CB" status "$T/$1" --json 2>/dev/null | grep -q '"status": *"succeeded"' && return 0
        sleep 0.05
    done
    echo "$1 did not succeed in 30 s"; return 1
}
check "FIFO: the short job behind the long one" race fifo '[]'
check "SLA-aware: the same with [makespan] < 1500" race sla '[{"name": "deadline", "constraint": "[makespan] < 1500"}]'
FIFO_MS=$(makespan shortfifo); SLA_MS=$(makespan shortsla); LONG_MS=$(makespan longsla)
echo "     makespans: short under FIFO $FIFO_MS ms, with its SLA $SLA_MS ms (the long one $LONG_MS ms)"
check "under FIFO the short job would miss 1.5 s" test "$FIFO_MS" -ge 1500
check "ranked by its SLA it meets it" test "$SLA_MS" -lt 1500
check "... so no breach of it" violations shortsla 0

"$CB" sla list --tenant "$T" --json >"$DIR/before.list"

# 8. cb-sla killed with SIGKILL mid-job: 10 tasks of 200 ms one after the other
printf '{"tenant": "%s", "job_id": "crash", "kind": "map", "function": {"backend": "local", "name": "sleep_ms"}, "input": {"items": [200, 200, 200, 200, 200, 200, 200, 200, 200, 200]}, "parallelism": 1, "sla": {"guarantees": [{"name": "fast", "constraint": "[execution_time] < 100"}]}}\n' "$T" >"$DIR/crash.json"
"$CB" submit "$DIR/crash.json" --wait --timeout 60 >"$DIR/crash.done" 2>&1 &
SUB=$!
$PY - "$API" "$T" <<'PY' # until 3 tasks ended (bounded)
import json, sys, time, urllib.request
api, tenant = sys.argv[1:3]
deadline = time.time() + 20
while time.time() < deadline:
    try:
        j = json.load(urllib.request.urlopen("%s/v1/jobs/%s/crash" % (api, tenant), timeout=5))
        if j["counts"]["succeeded"] >= 3:
            break
    except Exception:
        pass
    time.sleep(0.05)
PY
OLD=$(cat "$CB_DIR/sla.pid")
kill -9 "$OLD"
wait "$SUB"
check "the job ends while cb-sla restarts" grep -q '"status":"succeeded"' "$DIR/crash.done"
check "every breach is in the log once: the store counts 10, none lost, none twice" violations crash 10
check "cb-sla was restarted (a new process)" test "$(cat "$CB_DIR/sla.pid")" != "$OLD"
"$CB" sla list --tenant "$T" --json >"$DIR/after.list"
check "the agreements rebuilt from the log: the same list, states, versions and breaches" $PY -c '
import json, sys
def brief(p):
    return [(a["id"], a["state"], a["version"], a["breaches"], a["compliant"]) for a in json.load(open(p))]
a, b = brief(sys.argv[1]), brief(sys.argv[2])
assert a == b and len(a) == 5, (a, b)' "$DIR/before.list" "$DIR/after.list"

# 9. partitions: the breached jobs live in several partitions (the pinned
# partition function, common/cb_partition.h), and each breach is in the log
# of its job's partition (cb replay --job reads only that one)
in_its_log() {
    $PY - "$CB" "$T" "$P" slow reps3 span tw1 tw2 risky crash <<'PY'
import json, subprocess, sys
cb, tenant, n, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
def part(job):
    h = 0xcbf29ce484222325
    for c in ("%s/%s" % (tenant, job)).encode():
        h = ((h ^ c) * 0x100000001b3) & 0xffffffffffffffff
    return h % n
parts = {j: part(j) for j in jobs}
print("partitions", parts)
assert len(set(parts.values())) >= 2, "all in one partition"
for j in jobs:
    out = subprocess.run([cb, "replay", "--job", "%s/%s" % (tenant, j), "--json", "--to-end"],
                         capture_output=True, text=True, timeout=60).stdout
    types = [json.loads(l)["type"] for l in out.splitlines() if l.strip()]
    assert "cb.job.submitted" in types and "cb.sla.violated" in types, (j, types)
PY
}
[ "$P" -gt 1 ] && check "$P partitions: the breached jobs in several, each breach in its job's log" in_its_log

[ "$fails" -eq 0 ]
