#!/usr/bin/env bash
# tests/sec_nats.sh - tenants isolated by the broker (issue 21,
# docs/security.md) on a `cb up` stack with its own nats-server, whose users
# cb up and cb tenant write: every daemon with an identity of its own, each
# tenant with one that reaches its own subjects only.
# As tenant bob (and as the adapters' identity), with nothing but a broker
# connection (tests/nats_raw.py: the protocol itself, so what is seen is the
# server's own refusal): reading alice's done, progress and events messages
# (also through a JetStream consumer of the done stream), replies meant for
# others, submitting, enqueueing or cancelling as alice, appending to the
# log (a forged cb.task.succeeded for alice's running job) and putting
# invocations are refused by the server ("Permissions Violation"); alice's
# job still ends with its real result; each tenant's own operations work
# through the cb commands; a removed tenant and a wrong password cannot
# connect. Runs once (tests/run.sh), not per driver: it brings its own
# broker. Needs CB_TEST_BIN.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
DIR=$(mktemp -d /tmp/cbsec.XXXXXX)
export CB_DIR="$DIR/.cb" CB_LOG_LEVEL=error
unset CB_BROKER_URL CB_BROKER_PASSWORD_FILE CB_CONFIG CB_API_URL
PY=/usr/bin/python3
fails=0

stop() {
    CB_DIR="$DIR/.cb" "$CB" down --dir "$DIR/.cb" >/dev/null 2>&1
    [ "$fails" -eq 0 ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

. "$ROOT/tests/lib.sh" # check, wait_for

printf '{"backends": {"local": {"max_concurrency": 2}}}\n' >"$DIR/config.json"
if ! "$CB" up --detach --dir "$CB_DIR" --config "$DIR/config.json" >"$DIR/up.out" 2>&1; then
    echo "FAIL cb up"; cat "$DIR/up.out"; exit 1
fi
PORT=$(sed -n 's/^listen: "127.0.0.1:\([0-9]*\)"$/\1/p' "$CB_DIR/nats.conf")
check "cb up wrote its nats-server's users, readable by its owner only" \
    bash -c "[ \"\$(stat -c %a '$CB_DIR/nats.conf')\" = 600 ] && [ \"\$(stat -c %a '$CB_DIR/identities')\" = 700 ] && grep -q 'user: \"cb-engine\"' '$CB_DIR/nats.conf'"
check "no password on any command line of the stack" \
    bash -c "! grep -a -F -f <(cat '$CB_DIR'/identities/*.password) /proc/[0-9]*/cmdline 2>/dev/null"
"$CB" tenant add alice >"$DIR/alice.env" 2>"$DIR/alice.err"
"$CB" tenant add bob >"$DIR/bob.env" 2>"$DIR/bob.err"
check "cb tenant add makes alice and bob (and lists them)" \
    bash -c "grep -q 'CB_BROKER_URL=nats://alice@127.0.0.1:$PORT' '$DIR/alice.env' && [ \"\$('$CB' tenant list | tr '\n' ' ')\" = 'alice bob ' ]"
# cb-api tokens: cb tenant add made one per tenant (and the operator's)
API=$(cat "$CB_DIR/api_url")
code() { # TOKEN-FILE|- PATH: the HTTP status of GET API/PATH with that token
    if [ "$1" = - ]; then
        curl -s -o /dev/null -w '%{http_code}' "$API$2"
    else
        curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$1")" "$API$2"
    fi
}
check "cb tenant add prints the tenant's API token file (0600) and the API" \
    bash -c "grep -qx 'export CB_API_TOKEN_FILE=$CB_DIR/identities/alice.token' '$DIR/alice.env' && grep -qx 'export CB_API_URL=$API' '$DIR/alice.env' && [ \"\$(stat -c %a '$CB_DIR/identities/alice.token')\" = 600 ] && [ \"\$(stat -c %a '$CB_DIR/api_tokens.json')\" = 600 ] && ! grep -q -f '$CB_DIR/identities/alice.token' '$CB_DIR/api_tokens.json'"
check "cb-api: alice's token lists her jobs (200)" test "$(code "$CB_DIR/identities/alice.token" '/v1/jobs?tenant=alice')" = 200
check "... not bob's (403)" test "$(code "$CB_DIR/identities/alice.token" '/v1/jobs?tenant=bob')" = 403
check "... no token is refused now that tenants have theirs (401)" test "$(code - '/v1/jobs?tenant=alice')" = 401
check "... the operator's token reads the metrics (200)" test "$(code "$CB_DIR/identities/cb-admin.token" /metrics)" = 200

# alice's job: 20 tasks of 150 ms, two at a time (1.5 s)
$PY -c 'import json; print(json.dumps({"tenant": "alice", "job_id": "slow", "kind": "map", "function": {"backend": "local", "name": "sleep_ms"}, "input": {"items": [150] * 20}}))' >"$DIR/slow.json"
check "alice submits her job with her identity" as alice quiet "$CB" submit "$DIR/slow.json"

check "bob's hostile attempts are refused by the server, his own operations taken" \
    $PY - "$PORT" "$CB_DIR/identities" "$ROOT/tests" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[3])
from nats_raw import Session, Refused
port, ids = int(sys.argv[1]), sys.argv[2]
pw = lambda who: open("%s/%s.password" % (ids, who)).read().strip()
bob = Session(port, "bob", pw("bob"))
def refused(errs, what):
    assert any("Permissions Violation" in e for e in errs), "%s was not refused: %r" % (what, errs)
    print("     refused: %s (%s)" % (what, errs[0]))
def taken(errs, what):
    assert errs == [], "%s was refused: %r" % (what, errs)
    print("     taken:   %s" % what)
refused(bob.sub("cb.done.alice.>"), "bob reads alice's done messages")
refused(bob.sub("cb.done.>"), "bob reads every tenant's done messages")
refused(bob.sub("cb.progress.alice.slow"), "bob reads alice's progress")
refused(bob.sub("cb.evt.alice.>"), "bob reads alice's events")
refused(bob.sub("_INBOX.>"), "bob reads the replies meant for others")
refused(bob.sub("_INBOX.alice.>"), "bob reads alice's replies")
cfg = json.dumps({"stream_name": "CB_DONE", "config": {"name": "x", "filter_subject": "cb.done.alice.>", "deliver_subject": "_INBOX.bob.x", "deliver_policy": "last_per_subject", "ack_policy": "none"}}).encode()
refused(bob.pub("$JS.API.CONSUMER.CREATE.CB_DONE.x.cb.done.alice.>", cfg, reply="_INBOX.bob.r1"), "bob reads alice's done messages through JetStream (a late subscriber)")
refused(bob.pub("$JS.API.CONSUMER.CREATE.CB_EVENTS", b"{}", reply="_INBOX.bob.r2"), "bob reads the event log through JetStream")
refused(bob.pub("cb.submit.alice", json.dumps({"tenant": "alice", "job_id": "evil", "kind": "call", "function": {"backend": "local", "name": "noop"}, "input": 1}).encode(), reply="_INBOX.bob.r3"), "bob submits as alice")
refused(bob.pub("cb.enqueue.alice", b"{}"), "bob enqueues a job as alice")
refused(bob.pub("cb.ctl.alice.slow", json.dumps({"op": "cancel"}).encode(), reply="_INBOX.bob.r4"), "bob cancels alice's job")
forged = {"specversion": "1.0", "id": "alice/slow/19/1/succeeded", "source": "cbcore/adapter/local/adapter0", "type": "cb.task.succeeded", "subject": "slow", "time": "2026-12-02T00:00:00Z", "cbtenant": "alice", "cbjob": "slow", "datacontenttype": "application/json", "data": {"task": 19, "attempt": 1, "output": "forged by bob", "duration_ms": 1}}
refused(bob.pub("cb.evt.alice.slow", json.dumps(forged).encode(), headers={"Nats-Msg-Id": forged["id"]}), "bob appends a forged cb.task.succeeded for alice's job")
refused(bob.pub("cb.invoke.local", b"{}"), "bob puts an invocation")
refused(bob.pub("$JS.API.STREAM.DELETE.CB_EVENTS", b"", reply="_INBOX.bob.r5"), "bob deletes the log")
taken(bob.sub("cb.done.bob.>"), "bob reads his own done messages")
taken(bob.sub("_INBOX.bob.>"), "bob reads his own replies")
bob.msgs.clear()
mine = json.dumps({"stream_name": "CB_DONE", "config": {"name": "mine", "filter_subject": "cb.done.bob.>", "deliver_subject": "_INBOX.bob.d", "deliver_policy": "last_per_subject", "ack_policy": "none", "inactive_threshold": 2000000000}}).encode()
taken(bob.pub("$JS.API.CONSUMER.CREATE.CB_DONE.mine.cb.done.bob.>", mine, reply="_INBOX.bob.r6"), "bob reads his own done messages through JetStream")
answer = bob.expect("_INBOX.bob.r6")
assert answer and "error" not in json.loads(answer), answer
adapter = Session(port, "cb-adapter-local", pw("cb-adapter-local"))
refused(adapter.pub("cb.submit.alice", b"{}", reply="_INBOX.cb-adapter-local.r"), "an adapter submits a job")
refused(adapter.pub("cb.enqueue.alice", b"{}"), "an adapter enqueues a job")
refused(adapter.pub("$JS.API.STREAM.PURGE.CB_EVENTS", b"", reply="_INBOX.cb-adapter-local.r2"), "an adapter purges the log")
refused(adapter.pub("$JS.API.CONSUMER.MSG.NEXT.CB_INVOKE.cb_invoke_lambda", b'{"batch": 1}', reply="_INBOX.cb-adapter-local.r3"), "the local adapter takes another backend's invocations")
refused(adapter.pub("$JS.API.CONSUMER.CREATE.CB_INVOKE.mine.cb.invoke.>", b"{}", reply="_INBOX.cb-adapter-local.r4"), "the local adapter makes a consumer of every invocation")
refused(adapter.pub("$JS.API.CONSUMER.DELETE.CB_INVOKE.cb_invoke_local", b"", reply="_INBOX.cb-adapter-local.r5"), "an adapter deletes its backend's consumer")
taken(adapter.pub("$JS.API.CONSUMER.INFO.CB_INVOKE.cb_invoke_local", b"", reply="_INBOX.cb-adapter-local.r6"), "the local adapter reads its own consumer")
try:
    Session(port, "bob", "not-his-password")
    raise AssertionError("a wrong password was let in")
except Refused as e:
    print("     refused: a wrong password (%s)" % e)
try:
    Session(port)
    raise AssertionError("no credentials were let in")
except Refused as e:
    print("     refused: no credentials (%s)" % e)
PY

done_ok() { [ "$(as alice "$CB" result alice/slow 2>/dev/null)" = "[150,150,150,150,150,150,150,150,150,150,150,150,150,150,150,150,150,150,150,150]" ]; }
check "alice's job ends with its real result (the forged outcome never reached the log)" wait_for 400 done_ok
check "... and the log holds no event from bob" \
    bash -c "! '$CB' replay --job alice/slow --json 2>/dev/null | grep -q 'forged by bob'"
printf '{"tenant": "bob", "job_id": "own", "kind": "call", "function": {"backend": "local", "name": "echo"}, "input": "hello"}\n' >"$DIR/own.json"
check "bob runs his own job with his identity (submit --wait: his done message through JetStream)" \
    bash -c "set -a; . '$DIR/bob.env'; set +a; '$CB' submit --wait --timeout 30 '$DIR/own.json' | tail -1 | grep -q '\"result\":\"hello\"'"
printf '{"tenant": "alice", "job_id": "byalice", "kind": "call", "function": {"backend": "local", "name": "noop"}, "input": 1}\n' >"$DIR/byalice.json"
check "bob's cb submit of a job of alice's fails naming the refusal" \
    bash -c "set -a; . '$DIR/bob.env'; set +a; ! '$CB' submit '$DIR/byalice.json' 2>'$DIR/deny.err' && grep -q 'does not let this identity' '$DIR/deny.err'"
node_example() { # examples/node/submit.js with alice's identity (read from the environment)
    if [ ! -d "$ROOT/examples/node/node_modules/nats" ]; then
        (cd "$ROOT/examples/node" && npm ci --no-audit --no-fund >/dev/null 2>&1)
    fi
    printf '{"tenant": "alice", "kind": "call", "function": {"backend": "local", "name": "echo"}, "input": "from node"}\n' >"$DIR/node.json"
    as alice node "$ROOT/examples/node/submit.js" "$DIR/node.json" >"$DIR/node.out" 2>"$DIR/node.err" &&
        grep -q '"result":"from node"' "$DIR/node.out" || { cat "$DIR/node.err"; false; }
}
check "examples/node/submit.js runs as alice (her credentials from the environment, her done message through JetStream)" node_example
BOBPW=$(cat "$CB_DIR/identities/bob.password")
cp "$CB_DIR/identities/bob.token" "$DIR/bob.token"
"$CB" tenant remove bob >/dev/null 2>&1
bob_out() { [ "$(code "$DIR/bob.token" '/v1/jobs?tenant=bob')" = 401 ]; }
check "a removed tenant's API token is refused (401) within a second or two" wait_for 60 bob_out
check "a removed tenant can no longer connect" \
    $PY -c 'import sys; sys.path.insert(0, sys.argv[3])
from nats_raw import Session, Refused
try:
    Session(int(sys.argv[1]), "bob", sys.argv[2]); sys.exit(1)
except Refused as e:
    print("     refused:", e)' "$PORT" "$BOBPW" "$ROOT/tests"
check "no daemon was refused anything it needed (their logs)" \
    bash -c "! grep -l 'the broker refused' '$CB_DIR'/logs/*.log"

[ "$fails" -eq 0 ]
