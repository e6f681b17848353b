"""The item store behind resumable jobs: keys from inputs, atomic items, unreadable items recomputed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from onnxdream.itemstore import ItemStore, content_key, file_digest


def test_key_depends_on_every_part_and_its_order():
    base = content_key(b"model", {"steps": 10, "lr": 0.1}, "layer")
    assert base == content_key(b"model", {"lr": 0.1, "steps": 10}, "layer")  # dict order is not meaning
    assert base != content_key(b"model!", {"steps": 10, "lr": 0.1}, "layer")
    assert base != content_key(b"model", {"steps": 11, "lr": 0.1}, "layer")
    assert base != content_key("layer", b"model", {"steps": 10, "lr": 0.1})
    # Part boundaries count: ("ab", "c") is not ("a", "bc").
    assert content_key("ab", "c") != content_key("a", "bc")
    assert len(base) == 32 and int(base, 16) >= 0


def test_key_of_arrays_sees_dtype_and_shape():
    a = np.zeros((2, 3), np.float32)
    assert content_key(a) == content_key(a.copy())
    assert content_key(a) != content_key(a.reshape(3, 2))
    assert content_key(a) != content_key(a.astype(np.float64))


def test_file_digest_matches_hashlib(tmp_path):
    import hashlib

    path = tmp_path / "m.bin"
    path.write_bytes(os.urandom(3 * 1024 + 7))
    assert file_digest(path, chunk=1024) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_arrays_and_json_round_trip(tmp_path):
    store = ItemStore(tmp_path / "items")
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    key = content_key("a")
    assert store.load_array(key) is None and not store.has(key, ".npy")
    path = store.save_array(key, array)
    assert path == store.path(key, ".npy") and path.parent.name == key[:2]
    np.testing.assert_array_equal(store.load_array(key), array)
    store.save_json(key, {"mean": 0.5, "dead": [1, 2]})
    assert store.load_json(key) == {"mean": 0.5, "dead": [1, 2]}
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("junk", [b"", b"\x93NUMPY garbage", b"not json {"], ids=["empty", "bad-npy", "text"])
def test_unreadable_items_count_as_missing(tmp_path, junk):
    store = ItemStore(tmp_path)
    key = content_key("junk")
    store.write_bytes(key, ".npy", junk)
    store.write_bytes(key, ".json", junk)
    assert store.load_array(key) is None
    assert store.load_json(key) is None


def test_a_killed_writer_leaves_no_partial_item(tmp_path):
    """SIGKILL in the middle of a large write: the item is absent, never half there."""
    script = textwrap.dedent(
        f"""
        import sys
        from contextlib import contextmanager
        from onnxdream import itemstore
        store = itemstore.ItemStore({str(tmp_path)!r})
        import onnxdream.itemstore as m
        real = m.atomic_path
        @contextmanager
        def stalled(target):
            with real(target) as tmp:
                tmp.write_bytes(b"x" * 1000)
                print("writing", flush=True)
                sys.stdin.read()  # wait to be killed
                yield tmp
        m.atomic_path = stalled
        store.write_bytes("abcd", ".npy", b"y" * 10)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    store = ItemStore(tmp_path)
    assert not store.has("abcd", ".npy")
    assert store.read_bytes("abcd", ".npy") is None
