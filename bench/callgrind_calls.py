#!/usr/bin/env python3
"""bench/callgrind_calls.py DUMP1 DUMP2 [FN...] - per-request differences between two callgrind
dumps (see bench/callgrind.sh): total instructions and calls of each FN, divided by the growth
in calls of metrics_count_request (one per Kafka request kbridge reads); with -v, also the
callers of each FN. A name matches with or without its @@GLIBC version suffix."""
import re
import sys
from collections import defaultdict

COUNTER = "metrics_count_request"


def parse(path):
    names, total = {}, 0
    calls = defaultdict(int)  # callee -> calls
    edges = defaultdict(int)  # (caller, callee) -> calls
    fn = callee = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("summary:"):
                total = int(line.split()[1])
                continue
            m = re.match(r"^(c?)fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                if m.group(3) is not None:
                    names[m.group(2)] = m.group(3).split("@@")[0]
                nm = names.get(m.group(2), "?")
                if m.group(1):
                    callee = nm
                else:
                    fn = nm
                continue
            if line.startswith("calls="):
                n = int(line[6:].split()[0])
                calls[callee] += n
                edges[(fn, callee)] += n
    return total, calls, edges


def main():
    args = sys.argv[1:]
    verbose = "-v" in args
    args = [a for a in args if a != "-v"]
    t1, c1, e1 = parse(args[0])
    t2, c2, e2 = parse(args[1])
    req = c2[COUNTER] - c1[COUNTER]
    if req <= 0:
        sys.exit("callgrind_calls: no requests counted")
    out = [f"requests={req}", f"instr_per_req={(t2 - t1) / req:.0f}"]
    for fn in args[2:]:
        out.append(f"{fn}_per_req={(c2[fn] - c1[fn]) / req:.2f}")
    print(" ".join(out))
    if verbose:
        for fn in args[2:]:
            rows = [(e2[k] - e1.get(k, 0), k[0]) for k in e2 if k[1] == fn]
            rows = sorted((r for r in rows if abs(r[0]) / req >= 0.05), reverse=True)
            for n, caller in rows[:25]:
                print(f"  {fn} <- {caller}: {n / req:.2f}/req")


main()
