# tests/s3rver.sh - sourced by the tests that need an S3 server: s3rver (npm,
# pinned by tests/peers/package-lock.json) on a free loopback port.
#   s3rver_start DATA_DIR LOG BUCKET...   sets S3RVER_PORT and S3RVER_PID
#   s3rver_stop
# Credentials: S3RVER / S3RVER (s3rver's built-in account).
# --openssl-legacy-provider: s3rver makes its ListObjectsV2 continuation
# tokens with DES, which OpenSSL 3 (Node 17 and later) leaves out by default
# (without it every listing of more than one page is an InternalError).
. "$(dirname "${BASH_SOURCE[0]}")/../tools/brokers.sh" # cb_free_port, cb_wait_for, cb_port_open
S3RVER_PID=
S3RVER_PORT=

s3rver_start() {
    local data=$1 log=$2 root
    shift 2
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if [ ! -f "$root/tests/peers/node_modules/s3rver/bin/s3rver.js" ]; then
        echo "tests/peers/node_modules/s3rver is missing: (cd tests/peers && npm ci)" >&2
        return 1
    fi
    S3RVER_PORT=$(cb_free_port)
    local buckets=()
    for b in "$@"; do buckets+=(--configure-bucket "$b"); done
    mkdir -p "$data"
    node --openssl-legacy-provider "$root/tests/peers/node_modules/s3rver/bin/s3rver.js" \
        -d "$data" -a 127.0.0.1 -p "$S3RVER_PORT" "${buckets[@]}" >"$log" 2>&1 &
    S3RVER_PID=$!
    if ! cb_wait_for 30 cb_port_open "$S3RVER_PORT"; then # until it accepts connections
        echo "s3rver did not open port $S3RVER_PORT:" >&2
        cat "$log" >&2
        return 1
    fi
}

s3rver_stop() {
    cb_stop_child "$S3RVER_PID"
    S3RVER_PID=
}
