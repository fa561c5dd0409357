#!/usr/bin/env python3
"""Two clinvk builds on two copies of one store, question by question, alternating runs.

    python3 benches/ab_compare.py OLD_BINARY OLD_HOME NEW_BINARY NEW_HOME SESSION_ID [RUNS]

Each home is a CLINVK_HOME holding its own copy of the store (each build keeps its own index).
Prints a Markdown table of median wall times (BENCHMARKS.md, "A million sessions").
"""
import os
import statistics
import subprocess
import sys
import time

old_bin, old_home, new_bin, new_home, sid = sys.argv[1:6]
runs = int(sys.argv[6]) if len(sys.argv) > 6 else 21
env = dict(os.environ, CLINVK_NOW="2025-06-30T12:00:00Z", TZ="UTC")
QUESTIONS = [
    ["sessions", "list", "-n", "20"],
    ["sessions", "list", "-n", "20", "--backend", "codex"],
    ["sessions", "list", "-n", "20", "--tag", "urgent"],
    ["sessions", "list", "-n", "20", "--tag", "bugfix", "--tag", "security"],
    ["sessions", "list", "-n", "20", "--since", "7d"],
    ["sessions", "list", "-n", "20", "--search", "auth.go"],
    ["sessions", "list", "-n", "20", "--json"],
    ["sessions", "show", sid],
    ["sessions", "stats"],
    ["sessions", "stats", "--by", "month", "--by", "backend"],
    ["sessions", "stats", "--by", "model"],
    ["sessions", "stats", "--by", "day", "--since", "30d"],
    ["sessions", "stats", "--budget", "1000000"],
    ["sessions", "stats", "--by", "month", "--by", "backend", "--tag", "bugfix"],
    ["sessions", "stats", "--by", "tag"],
    ["sessions", "stats", "--by", "workdir"],
    ["sessions", "search", "auth"],
]


def run(binary, home, argv, check=True):
    start = time.perf_counter()
    done = subprocess.run([binary] + argv, env=dict(env, CLINVK_HOME=home),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    took = time.perf_counter() - start
    if check and done.returncode not in (0, 10, 11):
        sys.exit(f"{binary} {' '.join(argv)} exited {done.returncode}")
    return took


def row(label, old_ms, new_ms):
    print(f"| `{label}` | {old_ms:.1f} ms | {new_ms:.1f} ms | {100 * (new_ms - old_ms) / old_ms:+.0f} % |",
          flush=True)


print("| question | old | new | change |")
print("|---|---|---|---|")
for argv in QUESTIONS:
    old, new = [], []
    for _ in range(runs):
        old.append(run(old_bin, old_home, argv))
        new.append(run(new_bin, new_home, argv))
    row(" ".join(argv), statistics.median(old) * 1000, statistics.median(new) * 1000)
# One write: tag a session (and untag it, untimed, so that every run writes).
times = {old_bin: [], new_bin: []}
for _ in range(runs):
    for binary, home in ((old_bin, old_home), (new_bin, new_home)):
        times[binary].append(run(binary, home, ["sessions", "tag", sid, "abx"]))
        run(binary, home, ["sessions", "tag", sid, "abx", "--remove"])
row("sessions tag ID x (one write)", statistics.median(times[old_bin]) * 1000,
    statistics.median(times[new_bin]) * 1000)
