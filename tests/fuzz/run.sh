#!/bin/bash
# tests/fuzz/run.sh [SECONDS] - build each tests/fuzz/fuzz_*.c with clang's
# libFuzzer + ASan + UBSan and run it for SECONDS (default 60) from the seed
# corpus schemas/examples (and tests/fuzz/seeds/NAME/, a harness's own).
# New crashes are left in build/fuzz/.
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-60}
out=build/fuzz
mkdir -p "$out"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Icommon -Iengine -Iprojector -Iadapters -DCB_SCHEMA_DIR=\"$PWD/schemas\""
libs="$(pkg-config --libs jansson openssl libevent libevent_openssl libevent_pthreads) -lpthread -lm"
# The shared library as an archive: a harness links only the objects it uses
# (fuzz_intake has no HTTP client, no child processes: intake is pure), and a
# new file in common/ needs no edit here.
mkdir -p "$out/common"
for c in common/*.c; do
    # shellcheck disable=SC2086
    clang $flags -c "$c" -o "$out/common/$(basename "$c" .c).o"
done
rm -f "$out/libcommon.a"
ar rcs "$out/libcommon.a" "$out"/common/*.o
# the intake harness also needs the engine's pure parts (the configuration is in
# common/; no backend code, no HTTP client: intake is pure)
intake_srcs="engine/intake.c engine/flow.c engine/policy.c engine/scheduler.c projector/fold.c"
# the remote harness: the three protocols and what they link
remote_srcs="adapters/http.c adapters/lambda.c adapters/openwhisk.c adapters/remote.c"
for h in tests/fuzz/fuzz_*.c; do
    name=$(basename "$h" .c)
    # shellcheck disable=SC2086
    extra=""
    [ "$name" = fuzz_intake ] && extra="$intake_srcs"
    [ "$name" = fuzz_remote ] && extra="$remote_srcs"
    clang $flags -o "$out/$name" "$h" $extra "$out/libcommon.a" $libs
    mkdir -p "$out/$name.corpus"
    cp schemas/examples/*/*.json "$out/$name.corpus/"
    [ -d "tests/fuzz/seeds/$name" ] && cp "tests/fuzz/seeds/$name"/* "$out/$name.corpus/"
    echo "== $name for ${secs}s"
    (cd "$out" && "./$name" -max_total_time="$secs" -max_len=65536 "$name.corpus")
done
