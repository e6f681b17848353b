"""A throwaway Ray cluster on 127.0.0.1 for tests: a head and a second worker node, both on loopback.

Started with ``ray start`` in a temp dir of its own (short: Ray's socket paths must fit in 107
bytes), with a small object store and no dashboard; stopped by killing exactly the processes it
started (found through their temp dir and their parents), never with ``ray stop``, which would
end every Ray process on the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

OBJECT_STORE_BYTES = 80 * 1024 * 1024  # Ray's floor is 75 MiB


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process we can read."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            table[int(entry.name)] = (ppid, cmdline)
    return table


def cluster_pids(temp_dir: str) -> set[int]:
    """Every live process of the cluster in ``temp_dir``: those naming it, and their descendants."""
    table = _processes()
    ours = {pid for pid, (_, cmd) in table.items() if temp_dir in cmd and pid != os.getpid()}
    grew = True
    while grew:
        children = {pid for pid, (ppid, _) in table.items() if ppid in ours} - ours - {os.getpid()}
        ours |= children
        grew = bool(children)
    return ours


def _start(args: list[str], temp_dir: str) -> None:
    common = [
        "--node-ip-address",
        "127.0.0.1",
        "--num-cpus",
        "1",
        "--object-store-memory",
        str(OBJECT_STORE_BYTES),
        "--temp-dir",
        temp_dir,
        "--disable-usage-stats",
    ]
    # Workers import the tests' own jobs (tests.*) as the driver does.
    root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": path}
    subprocess.run(
        [_ray_cli(), "start", *args, *common], check=True, capture_output=True, env=env, timeout=120
    )


@dataclass(frozen=True)
class LocalCluster:
    address: str
    temp_dir: str


@contextlib.contextmanager
def local_cluster(nodes: int = 2) -> Iterator[LocalCluster]:
    """A head plus ``nodes - 1`` worker nodes on 127.0.0.1, at ``127.0.0.1:PORT``."""
    temp_dir = tempfile.mkdtemp(prefix="odr", dir="/tmp")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    try:
        _start(["--head", "--port", str(port), "--include-dashboard", "false"], temp_dir)
        for _ in range(nodes - 1):
            _start(["--address", address], temp_dir)
        yield LocalCluster(address, temp_dir)
    finally:
        stop(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def stop(temp_dir: str, grace: float = 5.0) -> None:
    """SIGTERM the cluster's processes, then SIGKILL what is left after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = cluster_pids(temp_dir)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while cluster_pids(temp_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not cluster_pids(temp_dir):
            return


class SlowSquare:
    """A test job (importable by the cluster's workers): squares numbers slowly, with its worker's pid."""

    def setup(self) -> None:
        self.pid = os.getpid()

    def run(self, item: int) -> tuple[int, int]:
        from onnxdream.errors import OnnxDreamError

        time.sleep(0.2)
        if item < 0:
            raise OnnxDreamError(f"item {item}: negative")
        return item * item, self.pid
