#!/bin/sh
# Submit a job with the cb tool and print its result: the shell client.
#   examples/shell/submit.sh JOB.json
# The broker comes from $CB_BROKER_URL or the ./.cb/url that `cb up` wrote.
set -eu
CB=${CB:-$(dirname "$0")/../../build/bin/cb}
done_line=$("$CB" submit --wait --timeout 300 "$1" | tail -n 1)
# the done message is one JSON line; its result is what we want
printf '%s\n' "$done_line" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(d.get("result"))); sys.exit(d["status"] != "succeeded")'
