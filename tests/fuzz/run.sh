#!/bin/bash
# tests/fuzz/run.sh [SECONDS] - build each tests/fuzz/fuzz_*.c with clang's
# libFuzzer + ASan + UBSan and run it for SECONDS (default 60) from the seed
# corpus schemas/examples. New crashes are left in build/fuzz/.
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-60}
out=build/fuzz
mkdir -p "$out"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -Icommon -DCB_SCHEMA_DIR=\"$PWD/schemas\""
libs="$(pkg-config --libs jansson) -lpthread"
for h in tests/fuzz/fuzz_*.c; do
    name=$(basename "$h" .c)
    # shellcheck disable=SC2086
    clang $flags -o "$out/$name" "$h" common/cb_event.c common/cb_schema.c common/cb_time.c \
        common/cb_alloc.c common/cb_map.c $libs
    mkdir -p "$out/$name.corpus"
    cp schemas/examples/*/*.json "$out/$name.corpus/"
    echo "== $name for ${secs}s"
    (cd "$out" && "./$name" -max_total_time="$secs" -max_len=65536 "$name.corpus")
done
