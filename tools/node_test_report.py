"""Replay every ONNX backend node test on the torch mirror; print counts by op and what fails.

Usage: ``python tools/node_test_report.py [--all] [--status wrong,error] [-k SUBSTRING]``.
``--all`` lists every op (not only those with cases that do not pass); ``--status`` lists the
cases in those states with the reason; ``-k`` keeps only cases whose name contains SUBSTRING.
"""

from __future__ import annotations

import argparse

from onnxdream.mirror import conformance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="list every op, also those that pass fully")
    parser.add_argument(
        "--status", default="wrong,error", help="list cases in these states (comma-separated)"
    )
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    args = parser.parse_args()
    results = conformance.sweep(c for c in conformance.cases() if args.k in c.name)
    print(conformance.report(results, every_op=args.all))
    for status in [s for s in args.status.split(",") if s]:
        listed = [r for r in results if r.status == status]
        if listed:
            print(f"\n{status}:")
            for r in listed:
                print(f"  {r.name} [{r.op}]: {r.reason}")


if __name__ == "__main__":
    main()
