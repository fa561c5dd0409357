#!/usr/bin/env python3
"""`sessions list -n 20` every 20 ms through one `sessions reindex`: the slowest lists, and when.

    python3 benches/during_rebuild.py BINARY CLINVK_HOME

BENCHMARKS.md, "The listing of every session, and another zone's periods": where in a rebuild
a command waits (at its start and at its swap, the two moments it holds the store's lock).
"""
import os
import subprocess
import sys
import time

binary, home = sys.argv[1], sys.argv[2]
env = dict(os.environ, HOME="/tmp/emptyhome", TZ="UTC", CLINVK_HOME=home,
           CLINVK_NOW="2025-06-30T12:00:00Z")
os.makedirs("/tmp/emptyhome", exist_ok=True)
t0 = time.time()
rebuild = subprocess.Popen([binary, "sessions", "reindex"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.05)
lists = []
while rebuild.poll() is None:
    start = time.time()
    done = subprocess.run([binary, "sessions", "list", "-n", "20"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lists.append((time.time() - start, start - t0, done.returncode))
    time.sleep(0.02)
print("rebuild %.1f s, %d lists, %d failed" % (time.time() - t0, len(lists),
                                              sum(1 for l in lists if l[2] != 0)))
for took, at, code in sorted(lists, reverse=True)[:6]:
    print("%.3f s at %.1f s (exit %d)" % (took, at, code))
