#!/bin/bash
# tests/check_layers_test.sh - tools/check_layers.py passes on the tree and
# fails, naming the file and the rule, on a copy with a forbidden include
# (engine -> adapters), an impure header reached by a pure module, a
# getenv() in intake, a raw json_dumps() in the engine and a loop made
# without cb_loop_new() in a tool.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d /tmp/cb-layers.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
python3 tools/check_layers.py >/dev/null
git ls-files --cached --others --exclude-standard '*.c' '*.h' | grep -v node_modules |
    while read -r f; do mkdir -p "$tmp/$(dirname "$f")" && cp "$f" "$tmp/$f"; done
python3 tools/check_layers.py --root "$tmp" >/dev/null # the copy is clean too
sed -i 's/#include "flow.h"/#include "flow.h"\n#include "backend.h"/' "$tmp/engine/intake.c"
echo 'static const char *cb_env_probe(void) { return getenv("X"); }' >>"$tmp/engine/intake.c"
sed -i 's/#include "cb_alloc.h"/#include "cb_alloc.h"\n#include "cb_mailbox.h"/' "$tmp/engine/flow.c"
echo 'static char *cb_raw_dump(json_t *j) { return json_dumps(j, 0); }' >>"$tmp/engine/service.c"
echo 'static struct event_base *cb_raw_loop(void) { return event_base_new(); }' >>"$tmp/tools/cli.c"
if out=$(python3 tools/check_layers.py --root "$tmp"); then
    echo "FAIL: check_layers passed a tree with forbidden includes" >&2
    exit 1
fi
for want in "engine/intake.c:[0-9]*: engine/ may not include adapters/backend.h" \
    "engine/intake.c:[0-9]*: pure module calls getenv()" \
    "pure module engine/flow.c reaches common/cb_mailbox.h" \
    "engine/service.c:[0-9]*: json_dumps() directly: use cb_json_dumps()" \
    "tools/cli.c:[0-9]*: event_base_new() directly: make loops with cb_loop_new()"; do
    if ! grep -q "$want" <<<"$out"; then
        echo "FAIL: expected \"$want\" in:" >&2
        echo "$out" >&2
        exit 1
    fi
done
echo "check_layers: passes on the tree, catches the planted violations"
