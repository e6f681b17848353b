"""Model load/save: external data, the 2 GB limit, validation, safe paths, atomic writes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper

from onnxdream.errors import BadModelError, WriteError, first_line

PROTO_LIMIT = 2**31 - 1
"""Protobuf cannot serialise a message of 2 GiB or more; larger models need external data."""

PathLike = str | os.PathLike[str]


SIZE_THRESHOLD = 1024
"""Tensors smaller than this stay inside the model when writing external data (onnx's default):
ONNX Runtime needs shape and axes constants inline."""


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}-"


def _sweep_stale(target: Path) -> None:
    """Remove temp files and folders of ``target`` left by processes that no longer run."""
    head = f".{target.name}."
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        if not (entry.name.startswith(head) and entry.name.endswith(".tmp")):
            continue
        pid = entry.name[len(head) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _running(int(pid)):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _write_error(target: Path, exc: OSError) -> WriteError:
    reason = exc.strerror or first_line(exc)
    return WriteError(f"{target}: cannot write ({reason})")


class Staging:
    """Outputs written to temp files beside their targets, moved into place together at the end."""

    def __init__(self) -> None:
        self.moves: list[tuple[Path, Path]] = []
        self.folders: list[Path] = []

    def path(self, target: PathLike) -> Path:
        """A fresh temp file for ``target``; stale temp files of the same target are swept first."""
        target = Path(target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _sweep_stale(target)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_temp_prefix(target), suffix=".tmp")
        except OSError as exc:
            raise _write_error(target, exc) from None
        self.moves.append((Path(tmp), target))
        os.close(fd)
        return Path(tmp)

    def folder(self, target: PathLike) -> Path:
        """A private temp folder beside ``target`` (removed at the end, swept like temp files)."""
        target = Path(target)
        try:
            folder = Path(tempfile.mkdtemp(dir=target.parent, prefix=_temp_prefix(target), suffix=".tmp"))
        except OSError as exc:
            raise _write_error(target, exc) from None
        self.folders.append(folder)
        return folder

    def target_of(self, exc: OSError) -> Path | None:
        """The output an ``OSError`` raised while writing is about (the latest one if it does not say)."""
        named = {str(tmp): target for tmp, target in self.moves}
        for name in (exc.filename, exc.filename2):
            if name is not None and str(name) in named:
                return named[str(name)]
        return self.moves[-1][1] if self.moves else None

    def commit(self) -> None:
        """Move every temp file into place, in the order they were asked for.

        Signals wait until all are moved: a model never lands without its data file.
        """
        with _signals_deferred():
            for tmp, target in self.moves:
                # mkstemp makes the file private (0600); give it the mode a plain open() would have.
                try:
                    tmp.chmod(target.stat().st_mode & 0o777 if target.exists() else _default_mode())
                    os.replace(tmp, target)
                except OSError as exc:
                    raise _write_error(target, exc) from None

    def clean(self) -> None:
        for tmp, _ in self.moves:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block is done, then deliver them.

    Python runs signal handlers in the main thread only: there, the handlers are swapped for
    one that records the signal (a signal mask would not do: another thread may receive it).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    signums = [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)]
    previous = {s: signal.signal(s, lambda signum, _frame: caught.append(signum)) for s in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        for signum in caught:
            signal.raise_signal(signum)


@contextlib.contextmanager
def staged() -> Iterator[Staging]:
    """Write several outputs all or none: each lands only if the whole block succeeds.

    A failure (or an interrupt, see :func:`onnxdream.commands.common.install_signal_handlers`)
    inside the block leaves every target untouched and no temp file. ``OSError`` becomes a
    one-line :class:`WriteError` naming the output.
    """
    staging = Staging()
    try:
        try:
            yield staging
        except OSError as exc:
            target = staging.target_of(exc)
            if target is None:
                raise
            raise _write_error(target, exc) from None
        staging.commit()
    finally:
        staging.clean()


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    A failure (or an interrupt) inside the block leaves ``path`` untouched and no temp file.
    """
    with staged() as staging:
        yield staging.path(path)


def _default_mode() -> int:
    """0666 minus the process umask (read without changing it for long)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _external_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    return [
        t for t in external_data_helper._get_all_tensors(model) if external_data_helper.uses_external_data(t)
    ]


def _external_location(tensor: onnx.TensorProto) -> str:
    for entry in tensor.external_data:
        if entry.key == "location":
            return entry.value
    return ""


def _check_external_locations(model: onnx.ModelProto, path: Path) -> None:
    """Refuse external-data locations that leave the model's folder (absolute, ``..``, links)."""
    base = path.parent.resolve()
    for tensor in _external_tensors(model):
        location = _external_location(tensor)
        if not location or os.path.isabs(location) or Path(location).drive:
            raise BadModelError(
                f"{path}: tensor {tensor.name!r} has unsafe external data location {location!r}"
            )
        resolved = (base / location).resolve()
        if not resolved.is_relative_to(base):
            raise BadModelError(
                f"{path}: tensor {tensor.name!r} points outside the model folder "
                f"({location!r}); refusing to read it"
            )
        if not resolved.is_file():
            raise BadModelError(
                f"{path}: external data file {location!r} for tensor {tensor.name!r} is missing"
            )


def _check_versions(model: onnx.ModelProto, path: Path) -> None:
    if model.ir_version > onnx.IR_VERSION:
        raise BadModelError(
            f"{path}: IR version {model.ir_version} is newer than this onnx supports "
            f"({onnx.IR_VERSION}); upgrade onnx"
        )
    newest = onnx.defs.onnx_opset_version()
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version > newest:
            raise BadModelError(f"{path}: opset {opset.version} is newer than this onnx supports ({newest})")


def read_proto(path: PathLike) -> onnx.ModelProto:
    """Parse ``path`` without its external data, with one-line errors for bad files."""
    path = Path(path)
    if not path.exists():
        raise BadModelError(f"{path}: file not found")
    if not path.is_file():
        raise BadModelError(f"{path}: not a file")
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise BadModelError(f"{path}: not an ONNX model or truncated ({exc})") from None
    if not model.HasField("graph") or not model.opset_import:
        raise BadModelError(f"{path}: not an ONNX model (no graph or no opset)")
    _check_versions(model, path)
    return model


def _data_files(model: onnx.ModelProto, path: Path) -> list[Path]:
    """The external-data files the (not yet loaded) ``model`` at ``path`` names, each once."""
    locations = dict.fromkeys(_external_location(t) for t in _external_tensors(model))
    return [path.parent / location for location in locations if location]


def load_model_and_data_files(
    path: PathLike, *, external_data: bool = True
) -> tuple[onnx.ModelProto, list[Path]]:
    """:func:`load_model`, and the external-data files the model read (empty: all inline)."""
    path = Path(path)
    model = read_proto(path)
    files = _data_files(model, path)
    if files:
        _check_external_locations(model, path)
    if external_data and files:
        try:
            external_data_helper.load_external_data_for_model(model, str(path.parent))
        except (OSError, ValueError, onnx.checker.ValidationError) as exc:
            # onnx refuses, among others, a data file reached through a symbolic link.
            raise BadModelError(f"{path}: cannot read external data ({first_line(exc)})") from None
    return model, files


def load_model(path: PathLike, *, external_data: bool = True) -> onnx.ModelProto:
    """Load an ONNX model, resolving external data relative to the model file.

    With ``external_data=False`` the weights stay on disk, but their files are still checked.

    Raises:
        BadModelError: missing/unreadable/truncated file, unsafe or missing external data,
            IR or opset newer than the installed onnx.
    """
    return load_model_and_data_files(path, external_data=external_data)[0]


def check_model(model: onnx.ModelProto, path: PathLike | None = None) -> None:
    """Run ``onnx.checker`` (the path form for models past the protobuf limit).

    Raises:
        BadModelError: the model is invalid; the message names the file.
    """
    where = path if path is not None else "<model>"
    try:
        if path is not None and model.ByteSize() >= PROTO_LIMIT:
            onnx.checker.check_model(str(path))
        else:
            onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise BadModelError(f"{where}: invalid model: {first_line(exc)}") from None


def data_path(path: PathLike) -> Path:
    """Where :func:`save_model` keeps the external data of the model it writes to ``path``."""
    path = Path(path)
    return path.parent / f"{path.name}.data"


def save_model(
    model: onnx.ModelProto,
    path: PathLike,
    *,
    external_data: bool | None = None,
    staging: Staging | None = None,
) -> Path:
    """Write ``model`` to ``path`` atomically (with its data file ``<name>.data`` when external).

    Args:
        model: the model; it is not modified.
        path: destination ``.onnx`` file.
        external_data: keep weights of 1 KiB or more in ``<name>.data`` beside the model
            (smaller tensors stay inline, as ONNX Runtime needs); ``None`` switches to external
            data automatically when the proto would pass 2 GB. An existing data file of the
            same name is replaced, whatever the working directory.
        staging: write as part of a larger all-or-none set of outputs (see :func:`staged`).

    Returns:
        The path written.

    Raises:
        WriteError: the model or its data file cannot be written.
    """
    path = Path(path)
    if staging is None:
        with staged() as own:
            return save_model(model, path, external_data=external_data, staging=own)
    if external_data is None:
        external_data = model.ByteSize() >= PROTO_LIMIT
    if not external_data:
        staging.path(path).write_bytes(model.SerializeToString())
        return path
    data = data_path(path)
    # The data file is staged first so that it is in place before the model that refers to it.
    tmp_data, tmp_model = staging.path(data), staging.path(path)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for tensor in external_data_helper._get_initializer_tensors(copy):
        # sys.getsizeof as onnx's own threshold counts it, so that the split is onnx's default one.
        if tensor.HasField("raw_data") and sys.getsizeof(tensor.raw_data) >= SIZE_THRESHOLD:
            external_data_helper.set_external_data(tensor, data.name)
    # onnx appends to <folder>/<location>: write it in a private folder under its final name.
    folder = staging.folder(path)
    external_data_helper.write_external_data_tensors(copy, str(folder))
    written = folder / data.name
    written.touch()
    os.replace(written, tmp_data)
    tmp_model.write_bytes(copy.SerializeToString())
    return path
