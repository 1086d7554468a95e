# tests/lib.sh - what the shell test scripts share (sourced, not run).
# check NAME COMMAND...: run COMMAND, print "ok   NAME" or "FAIL NAME" and
# count the failure in $fails.
fails=${fails:-0}
check() {
    local name=$1
    shift
    if "$@"; then echo "ok   $name"; else
        echo "FAIL $name"
        fails=$((fails + 1))
    fi
}
# wait_for TRIES COMMAND...: run COMMAND every 50 ms until it succeeds, at
# most TRIES times; the last attempt's output is shown.
wait_for() {
    local tries=$1
    shift
    for _ in $(seq $((tries - 1))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    "$@"
}

# TENANT COMMAND...: a command with the tenant's identity, the variables
# `cb tenant add` printed into $DIR/TENANT.env
as() {
    local who=$1
    shift
    (set -a; . "$DIR/$who.env"; set +a; "$@")
}

quiet() { "$@" >/dev/null; }
