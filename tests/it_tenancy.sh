#!/usr/bin/env bash
# tests/it_tenancy.sh - tenants sharing cbcore (issue 21, docs/engine.md
# "Fair share"), on a `cb up` stack, once per driver (tests/run.sh):
# the local backend is 4 invocations wide and tenant B weighs 3, A 1. A
# submits a map of 200 tasks of 100 ms (5 s alone on the backend); once it
# holds the backend B submits 40 tasks of 100 ms: B ends within 3 s (FIFO
# would keep it behind A's 200 tasks: 5 s and more), and while both want
# the backend B gets 3 of each 4 dispatches (0.75 ± 0.12 of them).
# Needs CB_TEST_BROKER_URL, CB_TEST_BIN.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
DIR=$(mktemp -d /tmp/cbten.XXXXXX)
export CB_DIR="$DIR/.cb" CB_LOG_LEVEL=error
unset CB_BROKER_URL CB_CONFIG CB_API_URL
PY=/usr/bin/python3
A="ta$$"
B="tb$$"
fails=0

stop() {
    "$CB" down --dir "$CB_DIR" >/dev/null 2>&1
    [ "$fails" -eq 0 ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

. "$ROOT/tests/lib.sh" # check, wait_for

printf '{"backends": {"local": {"max_concurrency": 4}}, "tenants": {"%s": {"weight": 3}}}\n' "$B" >"$DIR/config.json"
if ! "$CB" up --detach --dir "$CB_DIR" --broker "$CB_TEST_BROKER_URL" --config "$DIR/config.json" >"$DIR/up.out" 2>&1; then
    echo "FAIL cb up"; cat "$DIR/up.out"; exit 1
fi

map() { # TENANT JOB N: a map of N tasks of 100 ms, not waited for
    $PY -c 'import json, sys; print(json.dumps({"tenant": sys.argv[1], "job_id": sys.argv[2], "kind": "map", "function": {"backend": "local", "name": "sleep_ms"}, "input": {"items": [100] * int(sys.argv[3])}}))' \
        "$1" "$2" "$3" >"$DIR/$2.json"
    "$CB" submit "$DIR/$2.json" >"$DIR/$2.out" 2>&1
}
status() { # TENANT/JOB FIELD...: a field of its record
    "$CB" status "$1" --json 2>/dev/null | $PY -c 'import json, sys
j = json.load(sys.stdin)
for k in sys.argv[1:]:
    j = j[k]
print(j)' "${@:2}" 2>/dev/null
}
holds() { [ "$(status "$A/big" tasks inflight)" = 4 ]; }
finished() { [ "$(status "$1" status)" = succeeded ]; }

check "tenant A's map of 200 tasks" map "$A" big 200
check "... holds the backend (4 in flight)" wait_for 400 holds
check "tenant B's map of 40 tasks, submitted behind it" map "$B" small 40
check "B's job ends" wait_for 600 finished "$B/small"
check "A's job ends" wait_for 600 finished "$A/big"
"$CB" replay --job "$A/big" --json >"$DIR/a.log" 2>/dev/null
"$CB" replay --job "$B/small" --json >"$DIR/b.log" 2>/dev/null
check "B ended within 3 s, and while both wanted the backend B had 0.75 of the dispatches (weights 3:1)" \
    $PY - "$DIR/a.log" "$DIR/b.log" <<'PY'
import json, sys
from datetime import datetime
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
def events(path):
    return [json.loads(l) for l in open(path) if l.strip()]
a, b = events(sys.argv[1]), events(sys.argv[2])
def first(evs, ty):
    return next(t(e["time"]) for e in evs if e["type"] == ty)
sub_b, end_b = first(b, "cb.job.submitted"), first(b, "cb.job.succeeded")
makespan = end_b - sub_b
def dispatched(evs):
    return [(t(e["time"]), len(e["data"]["tasks"])) for e in evs if e["type"] == "cb.tasks.dispatched"]
db = dispatched(b)
lo, hi = db[0][0], db[-1][0]  # the window in which both wanted the backend
na = sum(n for x, n in dispatched(a) if lo <= x <= hi)
nb = sum(n for x, n in db if lo <= x <= hi)
share = nb / (na + nb)
print("     B's makespan %.2f s; in B's dispatch window (%.2f s) A got %d, B %d dispatches: B's share %.2f"
      % (makespan, hi - lo, na, nb, share))
assert makespan < 3.0, "B took %.2f s" % makespan
assert abs(share - 0.75) <= 0.12, "B's share %.2f" % share
PY

[ "$fails" -eq 0 ]
