#!/usr/bin/python3
"""tests/openapi_check.py SCHEMAS ANSWERS - every answer cb-api gave in a
test must be what schemas/openapi.json says: ANSWERS has one JSON object per
line, {"method", "path", "status", "type", "body"} (body: a file holding
the answer's body). For each: the path matches a route of the document, the
route has the method, the status is one of the operation's documented
responses, and a JSON body validates against that response's schema (with
the message schemas of SCHEMAS, by $id). Prints one line per failure and a
summary; exit status 1 on any failure."""
import json
import os
import re
import sys

from jsonschema import Draft202012Validator, RefResolver

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from schema_agree import format_checker, load_store  # noqa: E402


def route_of(doc, path):
    for template, item in doc["paths"].items():
        rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(rx, path):
            return template, item
    return None, None


def main():
    schemas, answers = sys.argv[1], sys.argv[2]
    store = load_store(schemas)
    doc = store["openapi.json"]
    checker = format_checker()
    resolver = RefResolver(base_uri="openapi.json", referrer=doc, store=store)
    fails = n = 0
    with open(answers) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    for a in lines:
        n += 1
        where = "%s %s -> %s" % (a["method"], a["path"], a["status"])
        template, item = route_of(doc, a["path"])
        op = item.get(a["method"].lower()) if item else None
        if not op:
            # no such route: 404; a route without this method: 405; both
            # with the error body
            want = 404 if not item else 405
            if a["status"] != want:
                print("FAIL %s: not a route of openapi.json, want %d" % (where, want))
                fails += 1
                continue
            op = {"responses": {str(want): doc["components"]["responses"]["NoRoute"]}}
        resp = op["responses"].get(str(a["status"]))
        if resp is None:
            print("FAIL %s: status not documented for %s" % (where, template))
            fails += 1
            continue
        content = resp.get("content")
        if not content:
            continue
        ctype = (a.get("type") or "").split(";")[0].strip()
        if ctype not in content:
            print("FAIL %s: Content-Type %r, documented %s" % (where, ctype, list(content)))
            fails += 1
            continue
        if ctype != "application/json":
            continue
        try:
            with open(a["body"]) as bf:
                body = json.load(bf)
        except ValueError as e:
            print("FAIL %s: the body is not JSON: %s" % (where, e))
            fails += 1
            continue
        v = Draft202012Validator(content[ctype]["schema"], resolver=resolver,
                                 format_checker=checker)
        errs = sorted(v.iter_errors(body), key=lambda e: list(e.path))
        for e in errs[:3]:
            print("FAIL %s: /%s: %s" % (where, "/".join(str(p) for p in e.path), e.message[:200]))
        if errs:
            fails += 1
    print("%d answers checked against openapi.json: %d wrong" % (n, fails))
    return 1 if fails or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
