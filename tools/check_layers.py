#!/usr/bin/env python3
"""tools/check_layers.py [--root DIR] - the dependency rules between folders,
checked on every #include (make lint).

Folders and what each may include (docs/architecture.md says why):

    common     nothing else: the shared library
    broker     common
    projector  common, broker
    engine     common, broker, projector
    adapters   common, broker
    api        common, broker, projector, engine (cb-api reads the store and
               assembles results with the engine's pure code)
    sla        common, broker, projector (the SLA evaluator, docs/sla.md)
    tools      everything (the CLI and benchmarks)
    tests      everything

So the engine reaches backends only through the broker (never
engine -> adapters), the projector knows nothing of the engine, the broker
nothing of what travels on it.

The pure modules (the fold, the flow, the policy, the scheduler, intake, the
result, the task list and the controller's decisions) also may not reach, even through other headers,
libevent, LMDB, a broker client or the project's I/O modules, nor call
getenv() or a clock: they are functions of their arguments.

The library folders (not tools/ or tests/) parse and write JSON only through
common/cb_json.c: jansson 2.14 goes on after a failed allocation and can
return damaged text or values, which cb_json_loadb/cb_json_dumps refuse.

Every folder makes its libevent loops only with cb_loop_new()
(common/cb_loop.c): a loop made before libevent's threading is set up is
not woken by the other threads that post to it.

A quoted include resolves as the compiler does: the including file's own
folder first, then -Icommon -Ibroker -Iprojector -Iengine -Iadapters -Iapi -Isla -Itools.
Exit status 1 with one line per violation ("file:line: ..."), else 0.
"""
import os
import re
import subprocess
import sys

FOLDERS = ["common", "broker", "projector", "engine", "adapters", "api", "sla", "tools"]
ALLOWED = {
    "common": {"common"},
    "broker": {"common", "broker"},
    "projector": {"common", "broker", "projector"},
    "engine": {"common", "broker", "projector", "engine"},
    "adapters": {"common", "broker", "adapters"},
    "api": {"common", "broker", "projector", "engine", "api"},
    "sla": {"common", "broker", "projector", "sla"},
    "tools": set(FOLDERS),
    "tests": set(FOLDERS) | {"tests"},
}
PURE = [
    "projector/fold.c",
    "engine/flow.c",
    "engine/policy.c",
    "engine/scheduler.c",
    "engine/intake.c",
    "engine/result.c",
    "engine/tasklist.c",
    "engine/decide.c",
    "engine/mirror.c",
    "projector/fence.c",
    "engine/owners.c",
    "common/cb_s3xml.c",
    "common/cb_sla_expr.c",
    "common/cb_sla_window.c",
    "sla/observe.c",
    "api/route.c",
    "api/metrics_text.c",
]
# System headers a pure module must not reach.
IMPURE_SYSTEM = re.compile(r"^(event2/|lmdb\.h$|nats/|nats\.h$|amqp|rabbitmq-c/|pthread\.h$)")
# Project headers doing I/O or owning threads.
IMPURE_PROJECT = {
    "common/cb_proc.h", "common/cb_httpc.h", "common/cb_mailbox.h",
    "common/cb_offload.h", "projector/store.h", "projector/batch.h",
    "projector/proj.h", "projector/replay.h",
}
IMPURE_CALLS = re.compile(r"\b(getenv|cb_time_now\w*|clock_gettime|time|gettimeofday|fopen|open)\s*\(")
LIBRARY = {"common", "broker", "projector", "engine", "adapters", "api", "sla"}
RAW_JSON = re.compile(r"\b(json_loadb|json_loads|json_dumps)\s*\(")
RAW_LOOP = re.compile(r"\b(event_base_new|event_base_new_with_config|evthread_use_pthreads)\s*\(")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def sources(root):
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "--cached", "--others",
                              "--exclude-standard", "*.c", "*.h"],
                             capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        out = []
        for d in FOLDERS + ["tests"]:
            for dp, _, fs in os.walk(os.path.join(root, d)):
                out += [os.path.relpath(os.path.join(dp, f), root) for f in fs
                        if f.endswith((".c", ".h"))]
    return sorted(f for f in out if f.split("/")[0] in ALLOWED and "node_modules" not in f)


def resolve(root, src, name):
    """The project file a quoted include names, or None (a system header)."""
    for d in [os.path.dirname(src)] + FOLDERS:
        cand = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(os.path.join(root, cand)):
            return cand
    return None


def includes(root, path):
    """[(line, kind, name, resolved)] of a file."""
    out = []
    with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                res = resolve(root, path, m.group(2)) if m.group(1) == '"' else None
                out.append((n, m.group(1), m.group(2), res))
    return out


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(\\.|[^"\\\n])*"', '""', text)


def banned_calls(root, files, pattern, applies, advice):
    """"file:line: call() directly: advice" for each call `pattern` finds
    in the .c files `applies` accepts (comments and strings left out)."""
    out = []
    for path in files:
        if not path.endswith(".c") or not applies(path):
            continue
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            text = strip_comments(f.read())
        for n, line in enumerate(text.split("\n"), 1):
            m = pattern.search(line)
            if m:
                out.append(f"{path}:{n}: {m.group(1)}() directly: {advice(m.group(1))}")
    return out


def main():
    root = "."
    if len(sys.argv) == 3 and sys.argv[1] == "--root":
        root = sys.argv[2]
    files = sources(root)
    errors = []
    for path in files:
        folder = path.split("/")[0]
        for line, kind, name, res in includes(root, path):
            if res is None:
                if kind == '"':
                    errors.append(f"{path}:{line}: \"{name}\" is not a file of the project")
                continue
            dep = res.split("/")[0]
            if dep not in ALLOWED[folder]:
                errors.append(f"{path}:{line}: {folder}/ may not include {res} "
                              f"({folder}/ depends only on {', '.join(sorted(ALLOWED[folder]))})")
    errors += banned_calls(root, files, RAW_JSON,
                           lambda p: p.split("/")[0] in LIBRARY and p != "common/cb_json.c",
                           lambda call: f"use cb_json_{call[5:]}() (common/cb_json.h)")
    errors += banned_calls(root, files, RAW_LOOP, lambda p: p != "common/cb_loop.c",
                           lambda call: "make loops with cb_loop_new() (common/cb_loop.h)")
    for path in PURE:
        if not os.path.isfile(os.path.join(root, path)):
            errors.append(f"{path}: listed as pure but missing")
            continue
        seen, todo = set(), [(path, [path])]
        while todo:
            cur, chain = todo.pop()
            if cur in seen:
                continue
            seen.add(cur)
            for line, kind, name, res in includes(root, cur):
                via = " -> ".join(chain + [res or name])
                if res is None and IMPURE_SYSTEM.match(name):
                    errors.append(f"{cur}:{line}: pure module {path} reaches <{name}> ({via})")
                elif res and (res in IMPURE_PROJECT or res.startswith("broker/")):
                    errors.append(f"{cur}:{line}: pure module {path} reaches {res} ({via})")
                elif res:
                    todo.append((res, chain + [res]))
        with open(os.path.join(root, path), encoding="utf-8") as f:
            text = strip_comments(f.read())
        for n, line in enumerate(text.split("\n"), 1):
            m = IMPURE_CALLS.search(line)
            if m:
                errors.append(f"{path}:{n}: pure module calls {m.group(1)}()")
    for e in errors:
        print(e)
    if errors:
        print(f"check_layers: {len(errors)} violation(s); the rules are in tools/check_layers.py")
        return 1
    print(f"check_layers: {len(files)} files follow the dependency rules, "
          f"{len(PURE)} pure modules are pure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
