#!/usr/bin/env python3
"""Make a word-count corpus: text objects of random words, for the object
storage example (README, docs/storage.md) and tests/it_objects.sh.

    make_corpus.py DIR [--bytes N] [--objects K] [--long-line L] [--seed S]

Writes DIR/part-000.txt ... : K objects (default 8) holding about N bytes in
all (default 1 GiB), of varied sizes: one empty, one of a few hundred bytes,
the rest uneven, so some are smaller than a chunk and most lines cross some
chunk boundary. Lines hold 0 to 30 words (blank lines too); with --long-line
one object has a single line of L bytes in its middle (longer than a chunk:
a range with no line start of its own). Prints the words (as `wc -w`
counts them) on stdout.
"""
import argparse
import os
import random

WORDS = [w.encode() for w in (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron "
    "pi rho sigma tau upsilon phi chi psi omega data cloud object range chunk line "
    "serverless function map reduce worker event log broker engine").split()]


def write_object(path, size, rng, long_line, pool):
    """size bytes of lines drawn from pool (line, words); returns the words."""
    words = 0
    with open(path, "wb") as f:
        n = 0
        long_at = size // 2 if long_line else -1
        block = []
        while n < size:
            if long_at >= 0 and n >= long_at:
                parts = []
                length = 0
                while length < long_line:
                    w = rng.choice(WORDS)
                    parts.append(w)
                    length += len(w) + 1
                line = b" ".join(parts) + b"\n"
                words += len(parts)
                long_at = -1
                block.append(line)
                n += len(line)
                continue
            picks = rng.choices(pool, k=4096)  # a block of lines at once
            for line, k in picks:
                block.append(line)
                words += k
                n += len(line)
                if n >= size:
                    break
            f.write(b"".join(block))
            block = []
        f.write(b"".join(block))
    return words


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--bytes", type=int, default=1 << 30)
    ap.add_argument("--objects", type=int, default=8)
    ap.add_argument("--long-line", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.dir, exist_ok=True)
    pool = []  # 20,000 different lines of 0 to 30 words (blank lines too)
    for _ in range(20000):
        k = rng.randint(0, 30)
        pool.append((b" ".join(rng.choice(WORDS) for _ in range(k)) + b"\n", k))
    k = max(a.objects, 3)
    weights = [rng.uniform(0.3, 1.7) for _ in range(k - 2)]
    total = sum(weights)
    sizes = [0, 300] + [int(a.bytes * w / total) for w in weights]
    words = 0
    for i, size in enumerate(sizes):
        words += write_object(os.path.join(a.dir, "part-%03d.txt" % i), size, rng,
                              a.long_line if i == 2 else 0, pool)
    print(words)


if __name__ == "__main__":
    main()
