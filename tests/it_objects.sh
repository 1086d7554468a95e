#!/usr/bin/env bash
# tests/it_objects.sh - maps over objects in storage on a real broker (run
# once per driver by tests/run.sh), on both storage drivers: the file driver
# (cb up's default, DIR/objects) and s3 against s3rver (npm).
#   - word count: a corpus with lines crossing every 1 MiB boundary, an empty
#     object, a tiny one and a line longer than a chunk; map_reduce with
#     split "lines": the count equals `wc -w`; the plan in the log
#     (cb.job.partitioned) has every object with its size and etag;
#   - outputs too large for the log: in storage, references in the log,
#     `cb result` gives the bytes back, a reduce gets the values;
#   - the adapter's read cache: one read of an object 20 tasks load, again
#     for a new version;
#   - http(s) URLs: the corpus served by a real web server (nginx): a word
#     count over its URLs and an s3:// one equals `wc -w`, the plan has the
#     server's sizes and ETags, ranged reads by `cb storage get`;
#   - rejections and failures with the reason: an empty prefix, a missing
#     bucket, a missing object, a missing web page, a URL of another scheme,
#     an object changed under a task;
#   - (file driver, 100 keys a listing page) 10,000 objects listed over 100
#     pages, and the engine
#     killed with -9 in the middle of listing: the same plan, page by page,
#     and the job's result.
# Needs CB_TEST_BROKER_URL, CB_TEST_BIN.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
URL=$CB_TEST_BROKER_URL
DIR=$(mktemp -d /tmp/cbobj.XXXXXX)
export CB_LOG_LEVEL=error
unset CB_BROKER_URL CB_CONFIG
fails=0
T="obj$$"
. "$ROOT/tests/s3rver.sh"
. "$ROOT/tests/nginx.sh"

stop() {
    for d in "$DIR"/file/.cb "$DIR"/s3/.cb; do
        [ -d "$d" ] && "$CB" down --dir "$d" >/dev/null 2>&1
    done
    s3rver_stop
    nginx_stop
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

# the job's terminal line (cb submit --wait), into $DIR/NAME.out
submit() { # submit NAME JSON
    printf '%s' "$2" | sed "s/TENANT/$T/g" >"$DIR/$1.json"
    "$CB" submit --wait --timeout 180 "$DIR/$1.json" >"$DIR/$1.out" 2>"$DIR/$1.err"
}
field() { # field NAME KEY: a member of the done message
    /usr/bin/python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]).get(sys.argv[2]))' \
        "$DIR/$1.out" "$2" 2>/dev/null
}

# -- the corpus: 5 objects, ~8 MB, a 2.5 MB line (longer than a 1 MiB chunk)
WORDS=$(/usr/bin/python3 "$ROOT/examples/wordcount/make_corpus.py" "$DIR/corpus" \
    --bytes 8000000 --objects 5 --long-line 2500000 --seed 11)
check "the corpus has as many words as wc -w says" test "$WORDS" = "$(cat "$DIR"/corpus/* | wc -w)"

s3rver_start "$DIR/s3data" "$DIR/s3rver.log" corpus || exit 1
nginx_start "$DIR/nginx" "$DIR/corpus" || exit 1
WEB="http://127.0.0.1:$NGINX_PORT"
# the two configurations: the functions, and the storage (the file driver
# at cb up's DIR/objects, listing 100 keys a page: 100 pages for the 10,000
# objects below, so that the engine can be killed in the middle)
/usr/bin/python3 - "$ROOT/tests/fixtures/objects.json" "$DIR" "$S3RVER_PORT" <<'PY'
import json, os, sys
src, out, port = sys.argv[1:]
for name, storage in (("s3", {"driver": "s3", "endpoint": f"http://127.0.0.1:{port}",
                              "region": "us-east-1", "access_key_id": "S3RVER",
                              "secret_access_key": "S3RVER"}),
                      ("file", {"driver": "file", "list_page": 100})):
    c = json.load(open(src))
    for f in c["backends"]["local"]["functions"].values():
        f["module"] = os.path.join(os.path.dirname(src), f["module"])
    c["storage"] = storage
    json.dump(c, open(os.path.join(out, name + ".json"), "w"))
PY

# one stack at a time on the broker (two engines would share the submissions)
for storage in s3 file; do
    echo "--- storage: $storage"
    export CB_DIR="$DIR/$storage/.cb"
    config="$DIR/$storage.json"
    if ! "$CB" up --detach --dir "$CB_DIR" --broker "$URL" --config "$config" >"$DIR/up-$storage.out" 2>&1; then
        echo "FAIL cb up ($storage)"
        cat "$DIR/up-$storage.out"
        fails=$((fails + 1))
        continue
    fi
    S=("$CB" storage --config "$config")
    [ $storage = file ] && "${S[@]}" mb s3://corpus
    for f in "$DIR"/corpus/*; do
        "${S[@]}" put "$f" "s3://corpus/text/$(basename "$f")" 2>/dev/null || echo "put $f failed"
    done

    # -- word count, line-aligned ranges of 1 MiB
    submit wc-$storage '{"tenant": "TENANT", "kind": "map_reduce",
      "function": {"backend": "local", "name": "count_words"},
      "input": {"objects": {"bucket": "corpus", "prefix": "text/", "chunk_bytes": 1048576, "split": "lines"}},
      "reduce": {"function": {"backend": "local", "name": "add_counts"}}}'
    check "[$storage] word count succeeds" test "$(field wc-$storage status)" = succeeded
    check "[$storage] and equals wc -w ($WORDS)" test "$(field wc-$storage result)" = "$WORDS"
    jid=$(field wc-$storage job_id)
    "$CB" replay --job "$T/$jid" --json >"$DIR/wc-$storage.log" 2>/dev/null
    "${S[@]}" ls s3://corpus/text/ --json >"$DIR/ls-$storage.json"
    check "[$storage] the log holds the plan: each object with its size and etag, in key order" \
        /usr/bin/python3 - "$DIR/wc-$storage.log" "$DIR/ls-$storage.json" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
pages = [e["data"] for e in events if e["type"] == "cb.job.partitioned"]
listed = json.load(open(sys.argv[2]))
assert [p["page"] for p in pages] == [0] and pages[0]["last"], pages
plan = [(o["url"], o["size"], o["etag"], o["chunk"]) for o in pages[0]["objects"]]
want = [(o["url"], o["size"], o["etag"], 1048576) for o in listed]
assert plan == want, (plan, want)
started = [e for e in events if e["type"] == "cb.job.started"][0]["data"]["tasks"]
ranges = sum(max(1, -(-o["size"] // 1048576)) for o in listed)
assert started == ranges + 1, (started, ranges)  # and the reduce
PY

    # -- every line read exactly once, whatever the boundaries
    submit lines-$storage '{"tenant": "TENANT", "kind": "map_reduce",
      "function": {"backend": "local", "name": "lines_seen"},
      "input": {"objects": {"bucket": "corpus", "prefix": "text/", "chunk_bytes": 65536, "split": "lines"}},
      "reduce": {"function": {"backend": "local", "name": "add_counts"}}}'
    check "[$storage] 64 KiB ranges: every line read once ($(cat "$DIR"/corpus/* | wc -l) lines)" \
        test "$(field lines-$storage result)" = "$(cat "$DIR"/corpus/* | wc -l)"

    # -- rejections and failures, with the reason
    submit empty-$storage '{"tenant": "TENANT", "kind": "map", "function": {"backend": "local", "name": "count_words"},
      "input": {"objects": {"bucket": "corpus", "prefix": "nothing-here/"}}}'
    check "[$storage] an empty prefix fails the job, naming it" \
        grep -q '"status":"failed","error":"no objects under s3://corpus/nothing-here/"' "$DIR/empty-$storage.out"
    submit nobucket-$storage '{"tenant": "TENANT", "kind": "map", "function": {"backend": "local", "name": "count_words"},
      "input": {"objects": {"bucket": "no-such-bucket"}}}'
    check "[$storage] a missing bucket fails the job with the storage's reason" \
        grep -q '"error":"cannot list: s3://no-such-bucket: NoSuchBucket' "$DIR/nobucket-$storage.out"
    submit nokey-$storage '{"tenant": "TENANT", "kind": "map", "function": {"backend": "local", "name": "count_words"},
      "input": {"objects": {"urls": ["s3://corpus/text/part-001.txt", "s3://corpus/text/missing.txt"]}}}'
    check "[$storage] a missing object fails the job, naming it" \
        grep -q '"error":"s3://corpus/text/missing.txt: NoSuchKey' "$DIR/nokey-$storage.out"
    submit urls-$storage '{"tenant": "TENANT", "kind": "map_reduce", "function": {"backend": "local", "name": "count_words"},
      "input": {"objects": {"urls": ["s3://corpus/text/part-001.txt", "s3://corpus/text/part-000.txt"], "chunk_number": 3, "split": "lines"}},
      "reduce": {"function": {"backend": "local", "name": "add_counts"}}}'
    check "[$storage] a list of URLs, chunk_number 3" \
        test "$(field urls-$storage result)" = "$(cat "$DIR"/corpus/part-001.txt | wc -w)"

    # -- objects on a web server (nginx): http URLs and an s3:// one in one job
    urls=$(cd "$DIR/corpus" && for f in *; do printf '"%s/%s", ' "$WEB" "$f"; done)
    submit web-$storage '{"tenant": "TENANT", "kind": "map_reduce", "function": {"backend": "local", "name": "count_words"},
      "input": {"objects": {"urls": ['"$urls"' "s3://corpus/text/part-001.txt"], "chunk_bytes": 1048576, "split": "lines"}},
      "reduce": {"function": {"backend": "local", "name": "add_counts"}}}'
    check "[$storage] a word count over http URLs (nginx) and an s3 object equals wc -w" \
        test "$(field web-$storage result)" = "$((WORDS + $(wc -w <"$DIR/corpus/part-001.txt")))"
    jid=$(field web-$storage job_id)
    "$CB" replay --job "$T/$jid" --json >"$DIR/web-$storage.log" 2>/dev/null
    check "[$storage] its plan has each page's size and the server's ETag" \
        /usr/bin/python3 - "$DIR/web-$storage.log" "$WEB" <<'PY'
import json, sys, urllib.request
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
plan = [o for e in events if e["type"] == "cb.job.partitioned" for o in e["data"]["objects"]]
web = [o for o in plan if o["url"].startswith(sys.argv[2])]
assert len(web) == 5 and len(plan) == 6, plan
for o in web:
    h = urllib.request.urlopen(urllib.request.Request(o["url"], method="HEAD")).headers
    assert o["size"] == int(h["Content-Length"]) and o["etag"] == h["ETag"].strip('"'), (o, dict(h))
PY
    "$CB" storage --config "$config" get "$WEB/part-001.txt" "$DIR/range-$storage.bin" --range 1000-201000 2>"$DIR/range-$storage.err"
    check "[$storage] cb storage get reads a byte range of a web page" \
        cmp "$DIR/range-$storage.bin" <(tail -c +1001 "$DIR/corpus/part-001.txt" | head -c 200000)
    submit web404-$storage '{"tenant": "TENANT", "kind": "map", "function": {"backend": "local", "name": "count_words"},
      "input": {"objects": {"urls": ["'"$WEB"'/part-001.txt", "'"$WEB"'/missing.txt"]}}}'
    check "[$storage] a missing web page fails the job, naming it and the HTTP status" \
        grep -qF "\"error\":\"$WEB/missing.txt: HTTP 404 (not found)\"" "$DIR/web404-$storage.out"
    submit ftp-$storage '{"tenant": "TENANT", "kind": "map", "function": {"backend": "local", "name": "count_words"},
      "input": {"objects": {"urls": ["ftp://example.org/a.txt"]}}}'
    check "[$storage] a URL of another scheme is refused at submission, with the path" \
        grep -q '/input/objects/urls/0' "$DIR/ftp-$storage.err"
    "${S[@]}" put "$DIR/corpus/part-001.txt" s3://corpus/victim/one.txt 2>/dev/null
    submit changed-$storage '{"tenant": "TENANT", "kind": "map", "function": {"backend": "local", "name": "rewrite_then_count"},
      "input": {"objects": {"bucket": "corpus", "prefix": "victim/"}}}'
    check "[$storage] an object changed under its task is a task error, not a mix" \
        grep -q 'changed since the job was planned' "$DIR/changed-$storage.out"

    # -- outputs too large for the log: 50 of 1 MiB go to storage, the log
    # holds references, cb result gives the 50 MiB back, a reduce gets them
    submit big-$storage '{"tenant": "TENANT", "kind": "map", "function": {"backend": "local", "name": "big_output"},
      "input": {"range": {"start": 0, "stop": 50}}}'
    check "[$storage] a map of 50 outputs of 1 MiB succeeds" test "$(field big-$storage status)" = succeeded
    jid=$(field big-$storage job_id)
    "$CB" replay --job "$T/$jid" --json >"$DIR/big-$storage.log" 2>/dev/null
    check "[$storage] the log holds only references (no event over 64 KiB; 50 references)" \
        /usr/bin/python3 - "$DIR/big-$storage.log" <<'PY'
import sys
lines = open(sys.argv[1], "rb").read().splitlines()
assert lines and max(len(l) for l in lines) < 65536, max(len(l) for l in lines)
assert sum(l.count(b'"$cb_ref"') for l in lines
           if b'"cb.task.succeeded"' in l or b'"cb.tasks.succeeded"' in l) == 50
PY
    "$CB" result --config "$config" --timeout 60 "$T/$jid" >"$DIR/big-$storage.result" 2>"$DIR/big-$storage.rerr"
    check "[$storage] cb result returns the 50 MiB, byte for byte (sha256)" \
        /usr/bin/python3 - "$DIR/big-$storage.result" <<'PY'
import hashlib, json, sys
want = json.dumps(["x" * (1 << 20) + str(i) for i in range(50)], separators=(",", ":")) + "\n"
got = open(sys.argv[1], "rb").read()
assert hashlib.sha256(got).hexdigest() == hashlib.sha256(want.encode()).hexdigest(), len(got)
PY
    submit bigr-$storage '{"tenant": "TENANT", "kind": "map_reduce", "function": {"backend": "local", "name": "big_output"},
      "input": {"range": {"start": 0, "stop": 20}}, "reduce": {"function": {"backend": "local", "name": "total_length"}}}'
    check "[$storage] a reduce gets the outputs behind the references" \
        test "$(field bigr-$storage result)" = "$((20 * 1048576 + 10 + 20))"

    # -- the read cache: 20 tasks load one object, storage is read once; a
    # new version of it is read again (one adapter, one runtime)
    head -c 3000000 /dev/urandom >"$DIR/model-$storage.bin"
    "${S[@]}" put "$DIR/model-$storage.bin" s3://corpus/model.bin 2>/dev/null
    submit cache-$storage '{"tenant": "TENANT", "kind": "map", "function": {"backend": "local", "name": "model_digest"},
      "input": {"range": {"start": 0, "stop": 20}}}'
    sum=$(sha256sum "$DIR/model-$storage.bin" | cut -d' ' -f1)
    check "[$storage] 20 tasks read the object through the cache" \
        test "$(field cache-$storage result)" = "$(/usr/bin/python3 -c "print(['$sum'] * 20)")"
    stats() { echo "$(stat -c %s "$CB_DIR/cache/adapter0/stats.hit" 2>/dev/null || echo 0)/$(stat -c %s "$CB_DIR/cache/adapter0/stats.miss" 2>/dev/null || echo 0)"; }
    check "[$storage] 19 hits, 1 miss ($(stats))" test "$(stats)" = 19/1
    head -c 1000 /dev/urandom >"$DIR/model2-$storage.bin"
    "${S[@]}" put "$DIR/model2-$storage.bin" s3://corpus/model.bin 2>/dev/null
    submit cache2-$storage '{"tenant": "TENANT", "kind": "map", "function": {"backend": "local", "name": "model_digest"},
      "input": {"range": {"start": 0, "stop": 5}}}'
    sum=$(sha256sum "$DIR/model2-$storage.bin" | cut -d' ' -f1)
    check "[$storage] a new version of the object is read again (etag), then cached" \
        test "$(field cache2-$storage result)/$(stats)" = "$(/usr/bin/python3 -c "print(['$sum'] * 5)")/23/2"
    [ $storage = s3 ] && "$CB" down --dir "$CB_DIR" >/dev/null 2>&1
done

# -- 10,000 objects over 100 pages; the engine killed in the middle of listing
export CB_DIR="$DIR/file/.cb"
/usr/bin/python3 - "$CB_DIR/objects/many" <<'PY'
import os, sys
for i in range(10000):
    d = os.path.join(sys.argv[1], "k%02d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "o%04d" % i), "w") as f:
        f.write("w%d\n" % i)
PY
"$CB" storage ls s3://many/ --json >"$DIR/many.json"
killed=""
for attempt in 1 2 3 4 5; do
    printf '%s' '{"tenant": "TENANT", "kind": "map_reduce", "chunksize": 100,
      "function": {"backend": "local", "name": "count_words"},
      "input": {"objects": {"bucket": "many"}},
      "reduce": {"function": {"backend": "local", "name": "add_counts"}}}' | sed "s/TENANT/$T/g" >"$DIR/many.job"
    # the engine (again: cb up restarts the one a previous attempt killed)
    epid=""
    for _ in $(seq 1 300); do # bounded: 30 s
        epid=$(pgrep -f "cb-engine --broker .* --store $CB_DIR/store" | head -n 1)
        [ -n "$epid" ] && break
        sleep 0.1
    done
    [ -n "$epid" ] || { echo "no engine runs for $CB_DIR"; ps ax | grep cb-engine; break; }
    for _ in $(seq 1 100); do # a restarted engine answers once it is up (bounded: 10 s)
        mid=$("$CB" submit "$DIR/many.job" 2>/dev/null) && [ -n "$mid" ] && break
        sleep 0.1
    done
    # the first page in the store (a local read: fast), then the engine
    # stopped at once (bounded: 10 s)
    for _ in $(seq 1 200); do
        "$CB" inspect job "$T/$mid" 2>/dev/null | grep -q '"pages"' && break
        sleep 0.05
    done
    kill -STOP "$epid"
    before=$("$CB" replay --job "$T/$mid" --json 2>/dev/null | grep -c '"cb.job.partitioned"')
    kill -9 "$epid"
    if [ "$before" -ge 1 ] && [ "$before" -lt 100 ]; then
        killed="after $before of 100 pages"
        break
    fi
    "$CB" result --timeout 120 "$T/$mid" >/dev/null 2>&1 # too late this time: let it end, try again
done
check "the engine was killed in the middle of listing ($killed)" test -n "$killed"
"$CB" result --timeout 120 "$T/$mid" >"$DIR/many.out" 2>"$DIR/many.err"
check "the job ends after the restart with every object counted" grep -qx 10000 "$DIR/many.out"
"$CB" replay --job "$T/$mid" --json >"$DIR/many.log" 2>/dev/null
check "the plan: pages 0 to 99 of 100 objects, the listing's, in order" \
    /usr/bin/python3 - "$DIR/many.log" "$DIR/many.json" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
pages = {}
for e in events:
    if e["type"] == "cb.job.partitioned":
        d = e["data"]
        if d["page"] in pages:  # a page appended again after the restart is the same page
            assert pages[d["page"]] == d, ("page differs", d["page"])
        pages[d["page"]] = d
assert sorted(pages) == list(range(100)), sorted(pages)
assert [len(pages[p]["objects"]) for p in range(100)] == [100] * 100
assert [pages[p]["last"] for p in range(100)] == [False] * 99 + [True]
plan = [(o["url"], o["size"], o["etag"]) for p in range(100) for o in pages[p]["objects"]]
listed = [(o["url"], o["size"], o["etag"]) for o in json.load(open(sys.argv[2]))]
assert plan == listed, "the plan is not the listing"
PY

if [ "$fails" -eq 0 ]; then echo "all checks passed"; else
    echo "$fails checks failed (files kept in $DIR)"
    exit 1
fi
