"""Replay the ONNX backend node tests on the torch mirror; print the pass rate per op and failures.

Usage: ``python tools/node_test_report.py [--all]`` (``--all`` also lists unclaimed ops).
"""

from __future__ import annotations

import argparse
import collections

from onnxdream.mirror import conformance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="also list ops the mirror does not claim")
    args = parser.parse_args()
    results = [conformance.run(case) for case in conformance.cases()]
    per_op: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in results:
        for op in r.ops:
            per_op[op][r.status] += 1
    print(f"{'op':28} {'pass':>5} {'fail':>5} {'skip':>5} {'unclaimed':>9}  rate")
    for op in sorted(per_op):
        c = per_op[op]
        ran = c["pass"] + c["fail"]
        if not ran and not c["skip"] and not args.all:
            continue
        rate = f"{100 * c['pass'] / ran:.0f}%" if ran else "-"
        print(f"{op:28} {c['pass']:5} {c['fail']:5} {c['skip']:5} {c['unclaimed']:9}  {rate}")
    total = collections.Counter(r.status for r in results)
    ran = total["pass"] + total["fail"]
    print(
        f"\nclaimed cases: {ran + total['skip']}, passed {total['pass']}/{ran} run "
        f"({100 * total['pass'] / max(ran, 1):.1f}%), skipped {total['skip']}, unclaimed {total['unclaimed']}"
    )
    for status in ("fail", "skip"):
        listed = [r for r in results if r.status == status]
        if listed:
            print(f"\n{status}ed:" if status == "fail" else "\nskipped:")
            for r in listed:
                print(f"  {r.name}: {r.reason}")


if __name__ == "__main__":
    main()
