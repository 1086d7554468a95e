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
