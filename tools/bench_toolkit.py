"""`cb bench toolkit`'s client (tools/bench_toolkit.c runs it on a fresh
stack): a map of N calls of a trivial Python function through the toolkit,
end to end: from map() to the results in this process (the function
shipped, the job submitted through cb-api, its done message on the tenant's
stream, the results read and decoded). One warm-up call first (the
runtimes start, the code is uploaded), outside the figures.

    python3 tools/bench_toolkit.py N [N...]     # prints one JSON line per N
Needs CB_DIR (the stack) and the cbcore package on the path.
"""
import json
import sys
import time

import cbcore


def ident(x):
    return x


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 10000]
    with cbcore.FunctionExecutor() as fexec:
        assert fexec.call_async(ident, 0).result(timeout=120) == 0  # warm-up
        for n in sizes:
            t0 = time.monotonic()
            fs = fexec.map(ident, list(range(n)))
            t_sub = time.monotonic()
            out = fexec.get_result(fs, timeout=600, progressbar=False)
            t1 = time.monotonic()
            if out != list(range(n)):
                raise SystemExit("wrong results for n=%d" % n)
            print(json.dumps({"n": n, "seconds": round(t1 - t0, 4),
                              "calls_per_s": round(n / (t1 - t0), 1),
                              "map_call_ms": round((t_sub - t0) * 1000, 2),
                              "jobs": fexec.stats["jobs"]}), flush=True)


if __name__ == "__main__":
    main()
