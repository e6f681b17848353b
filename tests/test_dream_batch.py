"""Folder jobs of the dream library: which files are read and where each one is written."""

from __future__ import annotations

import pytest

from onnxdream.dream.batch import folder_outputs
from onnxdream.errors import OnnxDreamError


def test_folder_outputs_keep_stem_and_writable_format_hidden_files_left_out(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("b.JPG", "a.webp", "notes.txt", ".hidden.png"):
        (src / name).write_bytes(b"")
    (src / "sub").mkdir()
    out = tmp_path / "out"
    assert folder_outputs(src, out) == {
        src / "a.webp": out / "a.webp",
        src / "b.JPG": out / "b.jpg",
        src / "notes.txt": out / "notes.png",
    }


def test_folder_outputs_refuse_a_file_or_the_input_folder(tmp_path):
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(
        OnnxDreamError, match=r"file\.png: the input is a folder, so the output must be a folder too"
    ):
        folder_outputs(tmp_path, tmp_path / "file.png")
    with pytest.raises(OnnxDreamError, match=r": refusing to write into the input folder$"):
        folder_outputs(tmp_path, tmp_path / ".")
