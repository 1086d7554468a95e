#!/usr/bin/python3
"""tests/schema_agree.py CB SCHEMAS - the C validator (`cb validate`) and an
independent one (Debian's python3-jsonschema, Draft 2020-12) must agree on
every sample in SCHEMAS/examples: valid/* valid, invalid/* invalid.

Debian 12's jsonschema has no date-time checker without an extra package, so
this script registers one written here from RFC 3339 section 5.6 (not the C
code's algorithm)."""
import glob
import json
import os
import re
import subprocess
import sys
from datetime import datetime

from jsonschema import Draft202012Validator, FormatChecker, RefResolver

RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def is_datetime(value):
    if not isinstance(value, str):
        return True
    m = RFC3339.match(value)
    if not m:
        return False
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        datetime(y, mo, d, h, mi, min(s, 59))
    except ValueError:
        return False
    return s <= 60


def load_store(schemas):
    """Every schema of the directory by its $id (else its file name)."""
    store = {}
    for path in glob.glob(os.path.join(schemas, "*.json")):
        with open(path) as f:
            doc = json.load(f)
        store[doc.get("$id", os.path.basename(path))] = doc
    return store


def format_checker():
    """jsonschema's checker with the date-time check written here."""
    checker = FormatChecker()
    checker.checks("date-time")(is_datetime)
    return checker


def main():
    cb, schemas = sys.argv[1], sys.argv[2]
    store = load_store(schemas)
    checker = format_checker()
    prefixes = ("job", "event", "invoke", "done", "reply", "ctl", "agreement")

    files = sorted(glob.glob(os.path.join(schemas, "examples", "*", "*.json")))
    out = subprocess.run([cb, "validate", "--schemas", schemas, "--json", *files],
                         capture_output=True, text=True)
    if out.returncode not in (0, 1):
        print("cb validate failed:", out.stderr)
        return 1
    c_verdicts = {}
    for line in out.stdout.splitlines():
        rec = json.loads(line)
        c_verdicts[rec["file"]] = (rec["valid"], rec["errors"])

    failures = 0
    counts = {"valid": 0, "invalid": 0}
    for path in files:
        kind = os.path.basename(os.path.dirname(path))
        base = os.path.basename(path)
        schema_id = next((p + ".json" for p in prefixes if base.startswith(p + "-")), "job.json")
        schema = store[schema_id]
        resolver = RefResolver(base_uri=schema_id, referrer=schema, store=store)
        try:
            with open(path) as f:
                inst = json.load(f)
            errs = list(Draft202012Validator(schema, resolver=resolver,
                                             format_checker=checker).iter_errors(inst))
            py_valid = not errs
        except json.JSONDecodeError:
            py_valid, errs = False, ["malformed JSON"]
        c_valid, c_errs = c_verdicts.get(path, (None, []))
        expected = kind == "valid"
        counts[kind] = counts.get(kind, 0) + 1
        if py_valid != expected or c_valid != expected:
            failures += 1
            print(f"DISAGREE {path}: expected {'valid' if expected else 'invalid'}, "
                  f"python says {py_valid}, cb says {c_valid}")
            for e in errs[:3]:
                print("   python:", getattr(e, "message", e))
            for e in c_errs[:3]:
                print("   cb:", e)
    print(f"{len(files)} samples ({counts['valid']} valid, {counts['invalid']} invalid): "
          f"{failures} disagreements")
    if counts["invalid"] < 40:
        print("fewer than 40 invalid samples")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
