#!/usr/bin/env bash
# tests/sec_amqp.sh - tenants isolated by the broker on RabbitMQ (issue 21,
# docs/security.md): a `cb up` stack given RabbitMQ's administrator makes a
# user per part (through the management API) and cb tenant one per tenant.
# As tenant bob (and as the adapters' user), with nothing but an AMQP
# connection (Debian's python3-pika: what is seen is the server's own
# refusal, 403 ACCESS_REFUSED): reading alice's done stream, the shared
# done stream, the event log, the invocation and submission queues, binding
# a queue to alice's done, progress or events, submitting, enqueueing or
# cancelling as alice, appending a forged cb.task.succeeded for alice's
# running job, putting invocations (also through the default exchange) and
# declaring queues of the stack are refused; alice's job still ends with its
# real result; each tenant's own operations work through the cb commands
# and examples/python/submit_amqp.py; a removed tenant and a wrong password
# cannot connect. Runs once on RabbitMQ (tests/run.sh gives it a virtual
# host): needs CB_TEST_BIN, CB_TEST_BROKER_URL (amqp://, the
# administrator) and CB_RABBITMQ_API.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
DIR=$(mktemp -d /tmp/cbsec.XXXXXX)
export CB_DIR="$DIR/.cb" CB_LOG_LEVEL=error
unset CB_BROKER_URL CB_BROKER_PASSWORD_FILE CB_CONFIG CB_API_URL
PY=/usr/bin/python3
fails=0

stop() {
    "$CB" down --dir "$DIR/.cb" >/dev/null 2>&1
    [ "$fails" -eq 0 ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

. "$ROOT/tests/lib.sh" # check, wait_for

case "${CB_TEST_BROKER_URL:-}" in
amqp://*) ;;
*) echo "sec_amqp.sh needs CB_TEST_BROKER_URL=amqp://..."; exit 1 ;;
esac
printf '{"backends": {"local": {"max_concurrency": 2}}}\n' >"$DIR/config.json"
if ! "$CB" up --detach --dir "$CB_DIR" --broker "$CB_TEST_BROKER_URL" --config "$DIR/config.json" \
    >"$DIR/up.out" 2>&1; then
    echo "FAIL cb up"; cat "$DIR/up.out"; exit 1
fi
VHOST=${CB_TEST_BROKER_URL##*/}
VHOST=${VHOST:-/}
PREFIX=
[ "$VHOST" != / ] && PREFIX="$VHOST."
# the users connected to the stack's virtual host, but for the administrator
# (cb up's own connection, the cb commands')
users() { curl -s -u guest:guest "$CB_RABBITMQ_API/api/connections" | $PY -c 'import json, sys; print(" ".join(sorted(set(c["user"] for c in json.load(sys.stdin) if c["vhost"] == sys.argv[1] and c["user"] != "guest"))))' "$VHOST"; }
all_parts() { [ "$(users)" = "${PREFIX}cb-adapter-local ${PREFIX}cb-api ${PREFIX}cb-engine ${PREFIX}cb-projector ${PREFIX}cb-sla" ]; }
check "every part connects as its own RabbitMQ user (the stats are a few seconds late)" \
    wait_for 400 all_parts
echo "     connected: $(users)"
check "identities readable by their owner only, no password on any command line" \
    bash -c "[ \"\$(stat -c %a '$CB_DIR/identities')\" = 700 ] && ! grep -a -F -f <(cat '$CB_DIR'/identities/*.password) /proc/[0-9]*/cmdline 2>/dev/null"
"$CB" tenant add alice >"$DIR/alice.env" 2>"$DIR/alice.err"
"$CB" tenant add bob >"$DIR/bob.env" 2>"$DIR/bob.err"
check "cb tenant add makes alice and bob (their URLs name their users)" \
    bash -c "grep -q 'CB_BROKER_URL=amqp://${PREFIX}alice@' '$DIR/alice.env' && grep -q 'CB_BROKER_URL=amqp://${PREFIX}bob@' '$DIR/bob.env' && [ \"\$('$CB' tenant list | tr '\n' ' ')\" = 'alice bob ' ]"

# alice's job: 20 tasks of 150 ms, two at a time (1.5 s)
$PY -c 'import json; print(json.dumps({"tenant": "alice", "job_id": "slow", "kind": "map", "function": {"backend": "local", "name": "sleep_ms"}, "input": {"items": [150] * 20}}))' >"$DIR/slow.json"
check "alice submits her job with her identity" as alice quiet "$CB" submit "$DIR/slow.json"

check "bob's hostile attempts are refused by the server, his own operations taken" \
    $PY - "$CB_DIR/identities" "$(cat "$CB_DIR/url")" "$PREFIX" <<'PY'
import json, sys, urllib.parse
import pika
ids, url, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
u = urllib.parse.urlsplit(url)
vhost = urllib.parse.unquote(u.path[1:]) or "/"
pw = lambda who: open("%s/%s.password" % (ids, who)).read().strip()
def connect(who, password=None):
    creds = pika.PlainCredentials(prefix + who, password or pw(who))
    return pika.BlockingConnection(pika.ConnectionParameters(u.hostname, u.port, vhost, creds, connection_attempts=1))
def attempt(who, fn):
    c = connect(who)
    ch = c.channel()
    try:
        fn(ch)
        return None
    except pika.exceptions.ChannelClosedByBroker as e:
        return "%d %s" % (e.reply_code, e.reply_text)
    finally:
        try:
            c.close()
        except Exception:
            pass
def refused(err, what):
    assert err and err.startswith("403 ACCESS_REFUSED"), "%s was not refused: %r" % (what, err)
    print("     refused: %s (%s)" % (what, err[:120]))
def taken(err, what):
    assert err is None, "%s was refused: %r" % (what, err)
    print("     taken:   %s" % what)
def consume(queue):
    return lambda ch: (ch.basic_qos(prefetch_count=10), ch.basic_consume(queue, lambda *a: None, arguments={"x-stream-offset": "first"} if queue.startswith("cb.done") or queue == "cb.events" else None))
def bind(key):
    return lambda ch: ch.queue_bind(ch.queue_declare("", exclusive=True).method.queue, "cb", key)
def pub(key, body=b"{}", exchange="cb", **props):
    def f(ch):
        ch.confirm_delivery()
        ch.basic_publish(exchange, key, body, pika.BasicProperties(**props))
    return f
refused(attempt("bob", consume("cb.done.alice")), "bob reads alice's done stream (a late subscriber)")
refused(attempt("bob", consume("cb.done")), "bob reads every tenant's done messages")
refused(attempt("bob", consume("cb.events")), "bob reads the event log")
refused(attempt("bob", consume("cb.invoke.local")), "bob takes invocations")
refused(attempt("bob", consume("cb.submit")), "bob takes submissions")
refused(attempt("bob", bind("cb.done.alice.#")), "bob binds a queue to alice's done messages")
refused(attempt("bob", bind("cb.done.#")), "bob binds a queue to every done message")
refused(attempt("bob", bind("cb.progress.alice.slow")), "bob binds a queue to alice's progress")
refused(attempt("bob", bind("cb.evt.alice.#")), "bob binds a queue to alice's events")
refused(attempt("bob", pub("cb.submit.alice", json.dumps({"tenant": "alice", "job_id": "evil", "kind": "call", "function": {"backend": "local", "name": "noop"}, "input": 1}).encode())), "bob submits as alice")
refused(attempt("bob", pub("cb.enqueue.alice")), "bob enqueues a job as alice")
refused(attempt("bob", pub("cb.ctl.alice.slow", json.dumps({"op": "cancel"}).encode())), "bob cancels alice's job")
forged = {"specversion": "1.0", "id": "alice/slow/19/1/succeeded", "source": "cbcore/adapter/local/adapter0", "type": "cb.task.succeeded", "subject": "slow", "time": "2026-12-02T00:00:00Z", "cbtenant": "alice", "cbjob": "slow", "datacontenttype": "application/json", "data": {"task": 19, "attempt": 1, "output": "forged by bob", "duration_ms": 1}}
refused(attempt("bob", pub("cb.evt.alice.slow", json.dumps(forged).encode(), message_id=forged["id"])), "bob appends a forged cb.task.succeeded for alice's job")
refused(attempt("bob", pub("cb.invoke.local")), "bob puts an invocation")
refused(attempt("bob", pub("cb.events", exchange="")), "bob appends to the log through the default exchange")
refused(attempt("bob", lambda ch: ch.queue_declare("cb.done.bob2", durable=True)), "bob declares a queue of the stack's")
refused(attempt("bob", lambda ch: ch.queue_delete("cb.done.bob")), "bob deletes his done stream")
taken(attempt("bob", consume("cb.done.bob")), "bob reads his own done stream")
taken(attempt("bob", bind("cb.progress.bob.#")), "bob binds a queue to his own progress")
taken(attempt("bob", lambda ch: ch.basic_consume("amq.rabbitmq.reply-to", lambda *a: None, auto_ack=True)), "bob waits for replies")
refused(attempt("cb-adapter-local", pub("cb.submit.alice")), "an adapter submits a job")
refused(attempt("cb-adapter-local", pub("cb.enqueue.alice")), "an adapter enqueues a job")
refused(attempt("cb-adapter-local", consume("cb.submit")), "an adapter takes submissions")
refused(attempt("cb-adapter-local", lambda ch: (ch.queue_declare("cb.invoke.lambda", durable=True, arguments={"x-queue-type": "quorum"}), ch.basic_consume("cb.invoke.lambda", lambda *a: None))), "the local adapter takes another backend's invocations")
taken(attempt("cb-adapter-local", consume("cb.invoke.local")), "the local adapter takes its own")
refused(attempt("cb-projector", pub("cb.evt.alice.slow", json.dumps(forged).encode())), "the projector appends an event")
for who, password in (("bob", "not-his-password"), ("alice", "")):
    try:
        connect(who, password or "x")
        raise AssertionError("a wrong password was let in")
    except pika.exceptions.ProbableAuthenticationError as e:
        print("     refused: a wrong password for %s" % who)
PY

done_ok() { [ "$(as alice "$CB" result alice/slow 2>/dev/null)" = "[150,150,150,150,150,150,150,150,150,150,150,150,150,150,150,150,150,150,150,150]" ]; }
check "alice's job ends with its real result (the forged outcome never reached the log)" wait_for 400 done_ok
check "... and the log holds no event from bob" \
    bash -c "! '$CB' replay --job alice/slow --json 2>/dev/null | grep -q 'forged by bob'"
printf '{"tenant": "bob", "job_id": "own", "kind": "call", "function": {"backend": "local", "name": "echo"}, "input": "hello"}\n' >"$DIR/own.json"
check "bob runs his own job with his identity (submit --wait: his done stream)" \
    bash -c "set -a; . '$DIR/bob.env'; set +a; '$CB' submit --wait --timeout 30 '$DIR/own.json' | tail -1 | grep -q '\"result\":\"hello\"'"
check "... and again later, the job sent once more (a late subscriber of his done stream)" \
    bash -c "set -a; . '$DIR/bob.env'; set +a; '$CB' submit --wait --timeout 30 '$DIR/own.json' | tail -1 | grep -q '\"result\":\"hello\"'"
printf '{"tenant": "alice", "job_id": "byalice", "kind": "call", "function": {"backend": "local", "name": "noop"}, "input": 1}\n' >"$DIR/byalice.json"
check "bob's cb submit of a job of alice's fails at once naming the refusal" \
    bash -c "set -a; . '$DIR/bob.env'; set +a; ! timeout 10 '$CB' submit '$DIR/byalice.json' 2>'$DIR/deny.err' && grep -q 'does not let this identity' '$DIR/deny.err'"
py_example() { # examples/python/submit_amqp.py with alice's identity (from the environment)
    printf '{"tenant": "alice", "kind": "call", "function": {"backend": "local", "name": "echo"}, "input": "from python"}\n' >"$DIR/py.json"
    as alice $PY "$ROOT/examples/python/submit_amqp.py" "$DIR/py.json" >"$DIR/py.out" 2>"$DIR/py.err" &&
        grep -q '"result": *"from python"' "$DIR/py.out" || { cat "$DIR/py.err" "$DIR/py.out"; false; }
}
check "examples/python/submit_amqp.py runs as alice (her credentials from the environment, her done stream)" py_example
BOBPW=$(cat "$CB_DIR/identities/bob.password")
"$CB" tenant remove bob >/dev/null 2>&1
check "a removed tenant can no longer connect" \
    $PY -c 'import sys, urllib.parse, pika
u = urllib.parse.urlsplit(sys.argv[1])
try:
    pika.BlockingConnection(pika.ConnectionParameters(u.hostname, u.port, urllib.parse.unquote(u.path[1:]) or "/", pika.PlainCredentials(sys.argv[3] + "bob", sys.argv[2]), connection_attempts=1)); sys.exit(1)
except pika.exceptions.ProbableAuthenticationError:
    print("     refused: bob, removed")' "$(cat "$CB_DIR/url")" "$BOBPW" "$PREFIX"
check "no part of the stack was refused anything it needed (their logs)" \
    bash -c "! grep -l 'the broker refused' '$CB_DIR'/logs/*.log"

[ "$fails" -eq 0 ]
