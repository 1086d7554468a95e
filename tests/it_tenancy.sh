#!/usr/bin/env bash
# tests/it_tenancy.sh - tenants sharing cbcore (issue 21, docs/engine.md
# "Fair share"), on a `cb up` stack, once per driver (tests/run.sh):
# the local backend is 4 invocations wide and tenant B weighs 3, A 1. A
# submits a map of 200 tasks of 100 ms (5 s alone on the backend); once it
# holds the backend B submits 40 tasks of 100 ms: B ends within 3 s (FIFO
# would keep it behind A's 200 tasks: 5 s and more), and while both want
# the backend B gets 3 of each 4 dispatches (0.75 ± 0.12 of them).
# Quotas of tenant C: 2 submissions per second (a burst of 6: 2 accepted,
# the rest refused naming the limit, accepted again once tokens are back)
# and 300 tasks per job (301 rejected naming the limit).
# Quotas of D (at most 2 tasks in flight: its other tasks wait and the
# slots go to E) and F (2 open jobs: a third refused until one ends).
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

C="tc$$"
D="td$$"
E="te$$"
F="tf$$"
printf '{"backends": {"local": {"max_concurrency": 4}}, "tenants": {"%s": {"weight": 3}, "%s": {"max_tasks_per_job": 300, "submissions_per_s": 2}, "%s": {"weight": 3, "max_concurrent_tasks": 2}, "%s": {"max_open_jobs": 2}}}\n' \
    "$B" "$C" "$D" "$F" >"$DIR/config.json"
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
holds() { # A's map has the whole backend: 4 tasks in flight
    local n
    n=$(status "$A/big" tasks inflight)
    [ "$n" = 4 ] || { echo "     $A/big: ${n:-no record} in flight"; return 1; }
}
finished() { [ "$(status "$1" status)" = succeeded ]; }

check "tenant A's map of 200 tasks" map "$A" big 200
check "... holds the backend (4 in flight)" wait_for 400 holds
check "tenant B's map of 40 tasks, submitted behind it" map "$B" small 40
check "B's job ends" wait_for 600 finished "$B/small"
check "A's job ends" wait_for 600 finished "$A/big"
logs() { # NAME=TENANT/JOB...: each job's events into DIR/NAME.log
    local x
    for x; do "$CB" replay --job "${x#*=}" --json >"$DIR/${x%%=*}.log" 2>/dev/null; done
}
logs a="$A/big" b="$B/small"
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

# quotas: tenant C may submit 2 jobs per second (a burst of 2) and jobs of
# 300 tasks at most
burst() { # C submits 6 small jobs at once: 2 accepted (the burst), the rest refused for now
    local ok=0 over=0 i
    for i in 1 2 3 4 5 6; do
        printf '{"tenant": "%s", "job_id": "r%s-%s", "kind": "call", "function": {"backend": "local", "name": "noop"}, "input": 1}\n' "$C" "$1" "$i" >"$DIR/r$1-$i.json"
    done
    # at once: six clients side by side, so that the bucket hardly refills
    # while they are started
    for i in 1 2 3 4 5 6; do
        ("$CB" submit "$DIR/r$1-$i.json" >"$DIR/r$1-$i.out" 2>&1; echo $? >"$DIR/r$1-$i.rc") &
    done
    wait
    for i in 1 2 3 4 5 6; do
        if [ "$(cat "$DIR/r$1-$i.rc")" = 0 ]; then ok=$((ok + 1))
        elif grep -q "over its limit of 2 submissions per second (tenants.$C.submissions_per_s)" "$DIR/r$1-$i.out"; then over=$((over + 1))
        else echo "     r$1-$i neither accepted nor refused for the rate:"; sed 's/^/       /' "$DIR/r$1-$i.out"; fi
    done
    echo "     accepted $ok, refused for the rate $over"
    [ "$ok" -ge 2 ] && [ "$ok" -le 3 ] && [ $((ok + over)) -eq 6 ]
}
check "C's burst of 6 submissions: the burst of 2 accepted (and what refilled), the rest refused naming the rate" burst a
ready_again() { # the first of the refused ones, submitted again
    local f
    f=$(grep -L '^0$' "$DIR"/ra-?.rc | head -1)
    [ -n "$f" ] && "$CB" submit "${f%.rc}.json"
}
check "... and a refused one is accepted once tokens are back (within 2 s)" wait_for 40 ready_again
too_big() { # refused for its size (asked again while refused for the rate)
    $PY -c 'import json, sys; print(json.dumps({"tenant": sys.argv[1], "kind": "map", "function": {"backend": "local", "name": "noop"}, "input": {"range": {"start": 0, "stop": 301}}}))' "$C" >"$DIR/big301.json"
    ! "$CB" submit "$DIR/big301.json" >"$DIR/big301.out" 2>&1 &&
        grep -q "the job has 301 tasks, over tenant .*$C.*'s limit of 300 (tenants.$C.max_tasks_per_job)" "$DIR/big301.out" &&
        return 0
    cat "$DIR/big301.out"
    return 1
}
check "C's job of 301 tasks is rejected, naming the limit" wait_for 40 too_big

# concurrent tasks: D (weight 3, at most 2 in flight) and E (weight 1) each
# submit 16 tasks of 100 ms on the 4-wide backend: D never has more than 2
# in flight, and the slots its quota leaves go to E (by weight alone D would
# take 3 of 4 and E 1)
both() { map "$D" capped 16 & map "$E" beside 16 & wait; }
check "D's and E's maps, side by side" both
check "D's job ends" wait_for 400 finished "$D/capped"
check "E's job ends" wait_for 400 finished "$E/beside"
logs d="$D/capped" e="$E/beside"
check "D had at most 2 tasks in flight (its max_concurrent_tasks), and E took the other 2 slots meanwhile" \
    $PY - "$DIR/d.log" "$DIR/e.log" <<'PY'
import json, sys
from datetime import datetime
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
def changes(path):  # (time, +n dispatched / -1 ended) in log order
    out = []
    for l in open(path):
        if not l.strip():
            continue
        e = json.loads(l)
        if e["type"] == "cb.tasks.dispatched":
            out.append((t(e["time"]), len(e["data"]["tasks"])))
        elif e["type"] in ("cb.task.succeeded", "cb.task.failed"):
            out.append((t(e["time"]), -1))
        elif e["type"] == "cb.tasks.succeeded":  # several of one command
            out.append((t(e["time"]), -len(e["data"]["tasks"])))
    return out
d, e = changes(sys.argv[1]), changes(sys.argv[2])
def peak(ch, lo=None, hi=None):
    n = top = 0
    for x, k in ch:
        n += k
        if (lo is None or lo <= x) and (hi is None or x <= hi):
            top = max(top, n)
    return top
disp = [x for x, k in d if k > 0]
lo, hi = disp[0], disp[-1]  # while D still had tasks to start
print("     D's peak in flight %d; E's peak while D still had tasks waiting %d" % (peak(d), peak(e, lo, hi)))
assert peak(d) == 2, "D had %d in flight" % peak(d)
assert peak(e, lo, hi) >= 2, "E had %d in flight: slots sat idle" % peak(e, lo, hi)
PY

# open jobs: F may have 2 jobs not ended; a third is refused for now, naming
# the limit, and accepted once one has ended
sleeper() { # F's job $1: one task of 1500 ms
    printf '{"tenant": "%s", "job_id": "%s", "kind": "call", "function": {"backend": "local", "name": "sleep_ms"}, "input": 1500}\n' "$F" "$1" >"$DIR/$1.json"
    "$CB" submit "$DIR/$1.json" >"$DIR/$1.out" 2>&1
}
two() { sleeper o1 && sleeper o2; }
check "F's first two jobs are accepted" two
refused_open() {
    ! sleeper o3 && grep -qF "has 2 jobs not ended, its limit (tenants.$F.max_open_jobs)" "$DIR/o3.out" ||
        { cat "$DIR/o3.out"; false; }
}
check "... a third is refused for now, naming the limit" refused_open
third() { "$CB" submit "$DIR/o3.json" >"$DIR/o3.out" 2>&1 || { cat "$DIR/o3.out"; false; }; }
check "... and accepted once one has ended" wait_for 100 third

[ "$fails" -eq 0 ]
