"""Run a command; print its wall time and peak memory at the end; exit with its exit code.

    python tools/measure.py python -m pytest -q

Peak memory is reported twice: the largest resident set of any one process of the command's
tree (``getrusage``, exact), and the largest sum over the tree at once (sampled from ``/proc``
every 0.2 s on Linux; what the OOM killer sees).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _tree_rss(root: int) -> int:
    """Bytes resident in ``root`` and all its descendants now (0 where /proc is missing)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            pid, ppid = int(entry.name), int(fields[1])
            rss[pid] = int((entry / "statm").read_text().split()[1]) * PAGE
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    start = time.monotonic()
    process = subprocess.Popen(argv)
    peak_tree = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        while not done.wait(0.2):
            peak_tree = max(peak_tree, _tree_rss(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    if Path("/proc/self/statm").exists():
        sampler.start()
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        code = process.wait()
    done.set()
    wall = time.monotonic() - start
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * (
        1 if sys.platform == "darwin" else 1024
    )
    tree = f", process tree at once {peak_tree / 2**30:.2f} GiB" if peak_tree else ""
    print(
        f"wall time {wall / 60:.1f} min; peak memory: largest process {largest / 2**30:.2f} GiB{tree}",
        file=sys.stderr,
    )
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
