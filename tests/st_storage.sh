#!/bin/bash
# tests/st_storage.sh - `cb storage` on both storage drivers: the file driver
# and the s3 driver against s3rver (npm, a third-party S3 server, pinned by
# tests/peers/package-lock.json), with python3-boto3 as an independent S3
# client on the same server. Needs no broker: tests/run.sh runs it once.
# Environment: CB_TEST_CB (the cb binary).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB=${CB_TEST_CB:-$ROOT/build/bin/cb}
T=$(mktemp -d /tmp/cbst.XXXXXX)
cleanup() {
    s3rver_stop
    rm -rf "$T"
}
trap cleanup EXIT
fails=0
ok() { echo "ok   $1"; }
bad() {
    echo "FAIL $1"
    fails=$((fails + 1))
}
check() { # name command...: the command succeeds
    local name=$1
    shift
    if "$@" >"$T/out" 2>"$T/err"; then ok "$name"; else
        bad "$name"
        sed 's/^/     /' "$T/err" | head -5
    fi
}
refuse() { # name pattern command...: the command fails and says pattern
    local name=$1 pat=$2
    shift 2
    if "$@" >"$T/out" 2>"$T/err"; then bad "$name (it succeeded)"; elif grep -q -- "$pat" "$T/err"; then
        ok "$name"
    else
        bad "$name (no \"$pat\" in: $(head -c 300 "$T/err"))"
    fi
}

# ---- s3rver on a free loopback port ----
. "$ROOT/tests/s3rver.sh"
mkdir -p "$T/files"
s3rver_start "$T/s3" "$T/s3rver.log" cbtest || exit 1
PORT=$S3RVER_PORT
cat >"$T/file.json" <<J
{"backends": {"local": {}}, "storage": {"driver": "file", "root": "$T/files"}}
J
cat >"$T/s3.json" <<J
{"backends": {"local": {}}, "storage": {"driver": "s3", "endpoint": "http://127.0.0.1:$PORT",
 "region": "us-east-1", "access_key_id": "S3RVER", "secret_access_key": "S3RVER"}}
J
cat >"$T/badkey.json" <<J
{"backends": {"local": {}}, "storage": {"driver": "s3", "endpoint": "http://127.0.0.1:$PORT",
 "access_key_id": "NOBODY", "secret_access_key": "S3RVER"}}
J
head -c 3145728 /dev/urandom >"$T/big"
printf 'x' >"$T/one"
: >"$T/empty"

for drv in file s3; do
    echo "--- driver $drv"
    S=("$CB" storage --config "$T/$drv.json")
    [ $drv = file ] && check "[$drv] mb makes the bucket" "${S[@]}" mb s3://cbtest
    check "[$drv] put 3 MiB" "${S[@]}" put "$T/big" s3://cbtest/data/big.bin
    check "[$drv] get returns it" "${S[@]}" get s3://cbtest/data/big.bin "$T/big.back"
    if cmp -s "$T/big" "$T/big.back"; then ok "[$drv] the bytes are equal"; else bad "[$drv] the bytes differ"; fi
    "${S[@]}" get s3://cbtest/data/big.bin --range 1000-70000 >"$T/slice" 2>"$T/err"
    if cmp -s "$T/slice" <(tail -c +1001 "$T/big" | head -c 69000); then ok "[$drv] a ranged get is [start, end)"; else bad "[$drv] ranged get"; fi
    "${S[@]}" get s3://cbtest/data/big.bin --range 3145720-4000000 >"$T/slice" 2>"$T/err"
    if cmp -s "$T/slice" <(tail -c 8 "$T/big"); then ok "[$drv] a range past the end stops at the end"; else bad "[$drv] range past the end"; fi
    refuse "[$drv] a range that starts past the end is refused" InvalidRange \
        "${S[@]}" get s3://cbtest/data/big.bin --range 3145729-
    check "[$drv] a zero-byte object" "${S[@]}" put "$T/empty" s3://cbtest/data/empty
    "${S[@]}" get s3://cbtest/data/empty >"$T/slice" 2>"$T/err"
    if [ $? -eq 0 ] && [ ! -s "$T/slice" ]; then ok "[$drv] reads back as nothing"; else bad "[$drv] zero-byte get: $(cat "$T/err")"; fi
    key='data/odd names/a b+c&d=e?f%ü.txt'
    check "[$drv] a key with spaces, + & = ? % and UTF-8" "${S[@]}" put "$T/one" "s3://cbtest/$key"
    if [ "$("${S[@]}" get "s3://cbtest/$key")" = x ] &&
        "${S[@]}" ls "s3://cbtest/data/odd" | grep -qF "s3://cbtest/$key"; then
        ok "[$drv] reads back and lists under its own name"
    else bad "[$drv] odd key round trip"; fi
    for i in $(seq -w 0 1049); do
        "${S[@]}" put "$T/one" "s3://cbtest/many/k$i" 2>/dev/null || echo "put k$i failed"
    done >"$T/putlog"
    n=$("${S[@]}" ls s3://cbtest/many/ | wc -l)
    if [ ! -s "$T/putlog" ] && [ "$n" = 1050 ]; then ok "[$drv] 1,050 keys list over two pages"; else bad "[$drv] listed $n of 1050 ($(head -2 "$T/putlog"))"; fi
    "${S[@]}" ls s3://cbtest/many/ | awk '{print $3}' >"$T/keys"
    if sort -c "$T/keys" 2>/dev/null && [ "$(sort -u "$T/keys" | wc -l)" = 1050 ]; then ok "[$drv] in key order, each once"; else bad "[$drv] listing order"; fi
    n=$("${S[@]}" ls s3://cbtest/many/k10 | wc -l)
    if [ "$n" = 50 ]; then ok "[$drv] a prefix selects"; else bad "[$drv] prefix many/k10 listed $n, want 50"; fi
    # keys in nested "directories", listed 2 a page: every page goes on after
    # the last key of the one before, across directories ("b-x" < "b/c" <
    # "b0" in byte order), and skips those wholly before it. The file driver
    # only: s3rver lists "b/c" before "b-x" (its directory walk's order, not
    # S3's byte order; docs/storage.md), so its start-after pages skip keys
    # there
    [ $drv = file ] && for k in a b/c b/d/e b0 b-x c/x d; do
        "${S[@]}" put "$T/one" "s3://cbtest/tree/$k" 2>/dev/null || echo "put $k failed"
    done >"$T/putlog"
    /usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["storage"]["list_page"]=2; json.dump(c, open(sys.argv[2], "w"))' \
        "$T/$drv.json" "$T/${drv}-page2.json"
    [ $drv = file ] && "$CB" storage --config "$T/${drv}-page2.json" ls s3://cbtest/tree/ | awk '{print $3}' >"$T/tree"
    printf 's3://cbtest/tree/%s\n' a b-x b/c b/d/e b0 c/x d >"$T/tree.want"
    if [ $drv = s3 ]; then :; elif [ ! -s "$T/putlog" ] && cmp -s "$T/tree" "$T/tree.want"; then
        ok "[$drv] nested keys over pages of 2, in byte order, each once"
    else bad "[$drv] nested listing: $(tr '\n' ' ' <"$T/tree")"; fi
    "${S[@]}" ls s3://cbtest/data/big --json >"$T/ls.json"
    if /usr/bin/python3 -c "import json,sys; v=json.load(open(sys.argv[1])); assert len(v)==1 and v[0]['size']==3145728 and v[0]['etag'], v" "$T/ls.json"; then
        ok "[$drv] ls --json gives size and etag"
    else bad "[$drv] ls --json"; fi
    refuse "[$drv] a missing key" NoSuchKey "${S[@]}" get s3://cbtest/nope
    refuse "[$drv] a missing bucket" NoSuchBucket "${S[@]}" ls s3://cbnothere/
    refuse "[$drv] a bad bucket name" "not a bucket name" "${S[@]}" get s3://No_Such/x
    check "[$drv] rm" "${S[@]}" rm s3://cbtest/data/empty
    if ! "${S[@]}" ls s3://cbtest/data/ | grep -q 'data/empty$'; then ok "[$drv] it is gone"; else bad "[$drv] rm left it"; fi
    check "[$drv] rm of a missing object is fine" "${S[@]}" rm s3://cbtest/data/empty
    check "[$drv] rm --prefix" "${S[@]}" rm --prefix s3://cbtest/many/
    if grep -q "1050 objects deleted" "$T/err" && [ "$("${S[@]}" ls s3://cbtest/many/ | wc -l)" = 0 ]; then
        ok "[$drv] deletes every object under it"
    else bad "[$drv] rm --prefix: $(cat "$T/err")"; fi
done

echo "--- s3 only"
refuse "an unknown access key is refused with the server's error" InvalidAccessKeyId \
    "$CB" storage --config "$T/badkey.json" ls s3://cbtest/
# boto3: an independent client on the same server, both ways
"$CB" storage --config "$T/s3.json" put "$T/big" s3://cbtest/x/from-cb 2>/dev/null
if /usr/bin/python3 - "$PORT" "$T" <<'PY'; then
import hashlib, sys
import boto3
port, t = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                  aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER")
body = s3.get_object(Bucket="cbtest", Key="x/from-cb")["Body"].read()
assert body == open(f"{t}/big", "rb").read(), "boto3 read other bytes than cb wrote"
s3.put_object(Bucket="cbtest", Key="x/from-boto3", Body=b"written by boto3\n")
PY
    ok "boto3 reads what cb wrote"
else bad "boto3 reads what cb wrote"; fi
if [ "$("$CB" storage --config "$T/s3.json" get s3://cbtest/x/from-boto3)" = "written by boto3" ]; then
    ok "cb reads what boto3 wrote"
else bad "cb reads what boto3 wrote"; fi

if [ $fails -eq 0 ]; then echo "all checks passed"; else
    echo "$fails checks failed"
    exit 1
fi
