"""Committed fixtures are exactly what ``tools/make_fixtures.py`` writes."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _make_fixtures_module():
    spec = importlib.util.spec_from_file_location("make_fixtures", ROOT / "tools" / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fixtures_are_regenerated_byte_for_byte(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        written = _make_fixtures_module().make_all(tmp_path)
    for path in written:
        assert path.read_bytes() == (ROOT / "fixtures" / path.name).read_bytes(), path.name


def test_fixtures_stay_small() -> None:
    total = sum(p.stat().st_size for p in (ROOT / "fixtures").rglob("*") if p.is_file())
    assert total < 5 * 2**20
