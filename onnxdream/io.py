"""Model load/save: external data, the 2 GB limit, validation, safe paths, atomic writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper

from onnxdream.errors import BadModelError, first_line

PROTO_LIMIT = 2**31 - 1
"""Protobuf cannot serialise a message of 2 GiB or more; larger models need external data."""

PathLike = str | os.PathLike[str]


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    A failure (or an interrupt) inside the block leaves ``path`` untouched and no temp file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        tmp_path.chmod(target.stat().st_mode & 0o777 if target.exists() else _default_mode())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


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


def uses_external_data(path: PathLike) -> bool:
    """Whether the model at ``path`` keeps tensors in side files."""
    return bool(_external_tensors(read_proto(path)))


def load_model(path: PathLike, *, external_data: bool = True) -> onnx.ModelProto:
    """Load an ONNX model, resolving external data relative to the model file.

    With ``external_data=False`` the weights stay on disk, but their files are still checked.

    Raises:
        BadModelError: missing/unreadable/truncated file, unsafe or missing external data,
            IR or opset newer than the installed onnx.
    """
    path = Path(path)
    model = read_proto(path)
    if _external_tensors(model):
        _check_external_locations(model, path)
    if external_data and _external_tensors(model):
        try:
            external_data_helper.load_external_data_for_model(model, str(path.parent))
        except (OSError, ValueError) as exc:
            raise BadModelError(f"{path}: cannot read external data ({exc})") from None
    return model


def as_model(model: onnx.ModelProto | PathLike, source: str | None = None) -> tuple[onnx.ModelProto, str]:
    """A loaded model (a proto as it is, a path through :func:`load_model`) and its label for messages."""
    if isinstance(model, onnx.ModelProto):
        return model, source or "<model>"
    return load_model(model), source or str(model)


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


def refuse_overwrite(output: PathLike, input_path: PathLike, in_place: bool = False) -> None:
    """Raise unless ``output`` differs from ``input_path`` or ``in_place`` was asked for."""
    out, src = Path(output), Path(input_path)
    if not in_place and out.exists() and src.exists() and out.resolve() == src.resolve():
        raise BadModelError(f"{out}: refusing to write over the input model (use --in-place)")


def save_model(
    model: onnx.ModelProto,
    path: PathLike,
    *,
    external_data: bool | None = None,
) -> Path:
    """Write ``model`` to ``path`` atomically.

    Args:
        model: the model; it is not modified.
        path: destination ``.onnx`` file.
        external_data: keep weights in ``<name>.data`` beside the model; ``None`` switches
            to external data automatically when the proto would pass 2 GB.

    Returns:
        The path written.
    """
    path = Path(path)
    if external_data is None:
        external_data = model.ByteSize() >= PROTO_LIMIT
    if not external_data:
        with atomic_path(path) as tmp:
            tmp.write_bytes(model.SerializeToString())
        return path
    data_name = f"{path.name}.data"
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    # The inner context commits first: the data file is in place before the model refers to it.
    with atomic_path(path) as tmp_model, atomic_path(path.parent / data_name) as tmp_data:
        # Write into a private folder under the final names, then move both into place.
        with tempfile.TemporaryDirectory(dir=path.parent) as staging:
            staged = Path(staging) / path.name
            onnx.save_model(
                copy,
                str(staged),
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=data_name,
                size_threshold=0,
            )
            (Path(staging) / data_name).touch()
            os.replace(staged, tmp_model)
            os.replace(Path(staging) / data_name, tmp_data)
    return path
