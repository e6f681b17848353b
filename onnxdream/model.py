"""One handle for a model, whatever names it: an ONNX file, a ``ModelProto``, ``zoo:NAME``, a
torch SPEC (a torch file or ``package.module:factory``) or a Keras file (``.keras``, ``.h5``),
exported with its module or layer names on the way.

Every verb (``rename``, ``expose``, ``check``, ``to_torch``, ``dream``, ``visualize``, ``layers``)
takes what :func:`open_model` takes, and reads the file once: the :class:`Model` it gets carries
the label used in messages, whether the weights lived in external-data files, and the graph index.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TypeAlias

import onnx

from onnxdream import zoo
from onnxdream.errors import OnnxDreamError, OptionError, unknown
from onnxdream.graph import GraphIndex
from onnxdream.io import load_model_and_data_files

ANONYMOUS = "<model>"
"""The label of a model given as a ``ModelProto`` without one."""


@dataclass(eq=False)
class Model:
    """A loaded ONNX model and what the verbs need to know about where it came from.

    Attributes:
        proto: the model, weights loaded.
        source: a label for messages: the file, the zoo name or the torch SPEC.
        path: the file it was read from: an ONNX file, or the torch file it was exported from
            (``None``: built in memory, or from a factory).
        data_files: the external-data files it was read with (empty: weights inline).
        kind: what named it: ``file`` (an ONNX file), ``proto``, ``zoo``, ``torch`` or ``keras``.
        weights_file: the weights file loaded into a torch SPEC's architecture (``weights=``).
    """

    proto: onnx.ModelProto
    source: str = ANONYMOUS
    path: Path | None = None
    data_files: tuple[Path, ...] = field(default=())
    kind: str = "proto"
    weights_file: Path | None = None

    @property
    def external_data(self) -> bool:
        """Whether the weights were read from external-data files (a rewrite keeps them there)."""
        return bool(self.data_files)

    @property
    def files(self) -> list[Path]:
        """Every file reading this model touched: the model, its data files and its weights file."""
        files = [self.path, *self.data_files] if self.path is not None else []
        return files + ([self.weights_file] if self.weights_file is not None else [])

    @cached_property
    def index(self) -> GraphIndex:
        """The graph's index, built once (verbs that edit the graph work on a copy or rebuild it)."""
        return GraphIndex(self.proto.graph, self.source)

    @property
    def opset(self) -> int:
        """The default-domain opset."""
        return next((o.version for o in self.proto.opset_import if o.domain in ("", "ai.onnx")), 1)


ModelSpec: TypeAlias = "Model | onnx.ModelProto | str | os.PathLike[str]"
"""Anything :func:`open_model` accepts."""


def open_model(
    spec: ModelSpec,
    *,
    trust_pickle: bool = False,
    source: str | None = None,
    external_data: bool = True,
    weights: str | os.PathLike[str] | None = None,
    weights_prefix: str | None = None,
) -> Model:
    """The :class:`Model` a path, ``ModelProto``, ``zoo:NAME`` or torch SPEC names.

    ``source`` labels a proto in messages (default ``<model>``; a file is labelled by its path).
    ``external_data=False`` leaves an ONNX file's external data unread (its files are still checked):
    enough for verbs that only read the graph.

    A torch SPEC or Keras file is exported with the export naming contract and verified against
    its framework; loading a ``torch.save(model)`` pickle, or a Keras file with a Lambda layer or
    custom objects, runs code from the file, so it needs ``trust_pickle=True``.
    ``weights`` is a weights file for a torch SPEC's architecture (``zoo:efficientnet-lite0`` or
    ``package.module:factory`` with a state dict, checkpoint, Lightning ``.ckpt`` or
    ``.safetensors``), its key prefix guessed or given as ``weights_prefix``.

    Raises:
        BadModelError: a missing, unreadable or unsafe file.
        MismatchError: a torch model whose export ONNX Runtime does not reproduce.
        OnnxDreamError: an unknown zoo name (nearest suggested), a bad torch SPEC, weights for
            something that is not a torch SPEC, or weights that do not fit it.
    """
    if weights is not None or weights_prefix is not None:
        return _open_torch_with_weights(spec, trust_pickle, weights, weights_prefix)
    if isinstance(spec, Model):
        return spec
    if isinstance(spec, onnx.ModelProto):
        return Model(spec, source or ANONYMOUS)
    if not isinstance(spec, str | os.PathLike):
        raise OnnxDreamError(
            f"cannot open a model from a {type(spec).__name__}; give a path, zoo:NAME or a ModelProto"
        )
    text = os.fspath(spec)
    if text.startswith(zoo.ZOO_PREFIX):
        return _open_zoo(text)
    from onnxdream.keras_models import is_keras_spec
    from onnxdream.torch_models import is_torch_spec

    if is_keras_spec(text):
        return _open_keras(text, trust_pickle)
    if is_torch_spec(text):
        return _open_torch(text, trust_pickle)
    proto, data_files = load_model_and_data_files(text, external_data=external_data)
    return Model(proto, source or text, Path(text), tuple(data_files), "file")


def editable_proto(spec: ModelSpec, model: Model, inplace: bool = False) -> onnx.ModelProto:
    """The proto a verb may edit: one read just now for it from ``spec``, or, with ``inplace``,
    the caller's own; otherwise a copy (a caller's proto or :class:`Model` is never changed)."""
    if inplace or not isinstance(spec, Model | onnx.ModelProto):
        return model.proto
    copy = onnx.ModelProto()
    copy.CopyFrom(model.proto)
    return copy


def _open_zoo(spec: str) -> Model:
    """The built-in model (its cached export) or a light zoo graph with seeded weights."""
    name = spec.removeprefix(zoo.ZOO_PREFIX)
    if name == zoo.EFFICIENTNET:
        from onnxdream.builtin import builtin_model_path

        path = builtin_model_path()
        proto, data_files = load_model_and_data_files(path)
        return Model(proto, spec, path, tuple(data_files), "zoo")
    if name in zoo.LIGHT_ZOO:
        return Model(zoo.light_zoo_model(name), spec, kind="zoo")
    raise OnnxDreamError(unknown("zoo model", name, [zoo.EFFICIENTNET, *zoo.LIGHT_ZOO], listing="available:"))


def _open_torch(
    spec: str,
    trust_pickle: bool,
    weights: str | os.PathLike[str] | None = None,
    weights_prefix: str | None = None,
) -> Model:
    """A torch SPEC exported (names kept, weights loaded from ``weights``) and checked against torch."""
    from onnxdream.torch_export import export_model, require_match

    result = export_model(spec, trust_pickle=trust_pickle, weights=weights, weights_prefix=weights_prefix)
    require_match(result, spec)
    path = Path(spec) if Path(spec).is_file() else None
    return Model(
        result.model, spec, path, kind="torch", weights_file=Path(weights) if weights is not None else None
    )


def _open_torch_with_weights(
    spec: ModelSpec, trust_pickle: bool, weights: str | os.PathLike[str] | None, weights_prefix: str | None
) -> Model:
    """A torch SPEC's architecture with the weights of a file; anything else cannot take them."""
    from onnxdream.keras_models import is_keras_spec
    from onnxdream.torch_models import is_torch_spec

    if weights is None:
        raise OptionError(
            "{weights_prefix} strips a prefix from the keys of {weights}; give the file",
            "weights",
            "weights_prefix",
        )
    text = os.fspath(spec) if isinstance(spec, str | os.PathLike) else None
    if text is None or is_keras_spec(text) or not (text == zoo.BUILTIN or is_torch_spec(text)):
        what = repr(text) if text is not None else f"a {type(spec).__name__}"
        raise OptionError(
            f"{{weights}} loads weights into a torch SPEC (zoo:{zoo.EFFICIENTNET}, package.module:factory "
            f"or a torch file), not into {what}",
            "weights",
        )
    return _open_torch(text, trust_pickle, weights, weights_prefix)


def _open_keras(spec: str, trust_pickle: bool) -> Model:
    """A Keras file exported (layer paths kept) and checked against Keras."""
    from onnxdream.keras_export import export_keras
    from onnxdream.torch_export import require_match

    result = export_keras(spec, trust_pickle=trust_pickle)
    require_match(result, spec, "Keras")
    return Model(result.model, spec, Path(spec), kind="keras")
