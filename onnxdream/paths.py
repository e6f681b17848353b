"""Path safety: nothing a command writes may be a file it reads (symlinks and hard links included).

Every command lists the paths it reads and the paths it will write, and calls
:func:`check_writes` before it writes anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from onnxdream.errors import OnnxDreamError

PathLike = str | os.PathLike[str]


def _identity(path: Path) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the file ``path`` leads to (links followed), ``None`` if none."""
    try:
        stat = path.stat()
    except (OSError, ValueError):
        return None
    return stat.st_dev, stat.st_ino


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` are one file: same inode when both exist, else the same resolved path."""
    first, second = Path(a), Path(b)
    ids = _identity(first), _identity(second)
    if ids[0] is not None and ids[1] is not None:
        return ids[0] == ids[1]
    return first.resolve() == second.resolve()


def _writable_folder(path: Path) -> None:
    """Refuse an output whose folder cannot be created or written (checked on the nearest existing one)."""
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OnnxDreamError(f"{path}: cannot write: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OnnxDreamError(f"{path}: cannot write: folder {folder} is read-only")


def check_writes(
    reads: Iterable[PathLike | None],
    writes: Iterable[PathLike | None],
    *,
    in_place: Iterable[PathLike] = (),
    hint: str = "",
) -> None:
    """Refuse, before anything is written, an output that would replace an input or another output.

    Args:
        reads: every file the command reads (models, their external data, images, maps).
        writes: every file the command may write (models, their ``.data`` files, reports, images).
        in_place: outputs allowed to replace an input (what ``--in-place`` asked for).
        hint: said when the first output would replace the first input (e.g. ``use --in-place``).

    Raises:
        OnnxDreamError: an output is an input (by path, symlink or hard link), two outputs are
            one file, an output is a folder, or its folder is not writable.
    """
    sources = [Path(r) for r in reads if r is not None]
    targets = [Path(w) for w in writes if w is not None]
    allowed = [Path(p) for p in in_place]
    for k, target in enumerate(targets):
        if target.is_dir():
            raise OnnxDreamError(f"{target}: is a folder; the output must be a file path")
        _writable_folder(target)
        for source in sources:
            if same_file(target, source) and not any(same_file(target, a) for a in allowed):
                if hint and k == 0 and source is sources[0]:
                    raise OnnxDreamError(f"{target}: refusing to write over the input model ({hint})")
                which = "" if str(source) == str(target) else f" {source}"
                raise OnnxDreamError(f"{target}: refusing to write over the input{which}")
        for other in targets[:k]:
            if same_file(target, other):
                raise OnnxDreamError(f"{target}: the same file as the output {other}; give distinct paths")
