"""torch -> ONNX with module names kept on the nodes (the export naming contract)."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import onnx

from onnxdream.compare import ATOL, Comparison, compare
from onnxdream.errors import MismatchError, OnnxDreamError, OptionError, first_line
from onnxdream.fresh_names import NameAuthority
from onnxdream.graph import GraphIndex
from onnxdream.metadata import ORIGIN_KEY, PREPROCESS_KEY, WEIGHTS_KEY, set_json, set_prop
from onnxdream.names.metadata import names_from_metadata
from onnxdream.torch_models import load_torch_model
from onnxdream.torch_weights import WeightsSource, load_weights


@dataclass
class ExportResult:
    """An exported model and how well ONNX Runtime reproduces the torch output.

    Verification is the shared rule of :mod:`onnxdream.compare` with ``rtol=0``: the largest
    difference must stay within ``ATOL * max(1, max|torch|)``.
    """

    model: onnx.ModelProto
    comparison: Comparison
    device: str
    weights: WeightsSource | None = None

    @property
    def max_abs_diff(self) -> float:
        return self.comparison.max_abs

    @property
    def scale(self) -> float:
        return self.comparison.scale

    @property
    def limit(self) -> float:
        return ATOL * self.comparison.scale

    @property
    def ok(self) -> bool:
        return self.comparison.ok


MAX_INPUT_ELEMENTS = 2**31 - 1
"""Largest example input export builds (int32 indexing limit of the exporters and runtimes)."""


def check_input_shape(shape: Sequence[int]) -> None:
    if not shape or any(d <= 0 for d in shape):
        raise OnnxDreamError(f"input shape must be positive integers like 1,3,224,224, got {list(shape)}")
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise OnnxDreamError(
            f"input shape {','.join(map(str, shape))} has {math.prod(shape)} elements; "
            f"at most {MAX_INPUT_ELEMENTS} are supported"
        )


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """The exporters print progress, warnings and log lines; keep stdout and stderr clean."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _to_onnx(model, example, *, legacy: bool, opset: int | None, dynamic_batch: bool) -> onnx.ModelProto:
    import torch

    if legacy or isinstance(model, torch.jit.ScriptModule):
        buffer = io.BytesIO()
        axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
        torch.onnx.export(
            model,
            (example,),
            buffer,
            dynamo=False,
            opset_version=opset or 17,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes=axes,
        )
        return onnx.load_model_from_string(buffer.getvalue())
    shapes = ({0: torch.export.Dim("batch", min=1, max=1024)},) if dynamic_batch else None
    program = torch.onnx.export(
        model, (example,), dynamo=True, opset_version=opset, dynamic_shapes=shapes, verbose=False
    )
    return program.model_proto


def name_nodes(
    model: onnx.ModelProto, modules: set[str], scope_names: Mapping[str, str] | None = None
) -> None:
    """Apply the export naming contract in place and record ``onnxdream.origin``
    (``scope_names``: module path -> the name to give it, such as a Keras layer path)."""
    names = names_from_metadata(GraphIndex(model.graph), modules, scope_names)
    authority = NameAuthority(names.values())
    for i, node in enumerate(model.graph.node):
        if i in names:
            node.name = names[i]
            set_prop(node, ORIGIN_KEY, "export")
        else:
            # No scope evidence at all (rare): keep the exporter's name, made unique.
            node.name = authority.claim(node.name or node.op_type)
            set_prop(node, ORIGIN_KEY, "kept")


def _verify(model: onnx.ModelProto, torch_model, example) -> tuple[Comparison, str]:
    import torch

    from onnxdream.runtime import make_session

    session = make_session(model, device="cpu", source="the exported model")
    with torch.no_grad():
        expected = torch_model(example)
    expected = expected[0] if isinstance(expected, tuple | list) else expected
    got = session.run({session.input_names[0]: example.numpy()})[session.output_names[0]]
    return compare(got, expected.numpy(), ATOL, rtol=0.0), session.device


def export_model(
    spec: str,
    *,
    legacy: bool = False,
    opset: int | None = None,
    input_shape: Sequence[int] = (1, 3, 224, 224),
    dynamic_batch: bool = False,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    seed: int = 0,
    trust_pickle: bool = False,
    weights: str | os.PathLike[str] | None = None,
    weights_prefix: str | None = None,
) -> ExportResult:
    """Export a torch model (see :func:`load_torch_model` for SPEC) with module names kept.

    Returns the model and the max difference between ONNX Runtime and torch on a seeded random
    input; callers decide whether to fail (``ExportResult.ok``). ``trust_pickle=True`` allows a
    ``torch.save(model)`` file, whose loading runs code from the file.

    ``weights`` loads a weights file into the SPEC's architecture first (a state dict, a
    checkpoint, a Lightning ``.ckpt`` or ``.safetensors``; see :mod:`onnxdream.torch_weights`),
    its key prefix guessed or given as ``weights_prefix``; the file's name and sha256 are recorded
    in the model's ``onnxdream.weights`` metadata.

    Raises:
        OnnxDreamError: bad SPEC (see :func:`load_torch_model`), an input shape past
            :data:`MAX_INPUT_ELEMENTS`, a weights file that cannot be read or does not fit
            (see :func:`load_weights`), or the exporter fails.
    """
    import torch

    from onnxdream import zoo

    check_input_shape(input_shape)
    if weights_prefix is not None and weights is None:
        raise OptionError(
            "{weights_prefix} strips a prefix from the keys of {weights}; give the file",
            "weights",
            "weights_prefix",
        )
    torch_model = load_torch_model(spec, trust_pickle=trust_pickle)
    source = None
    if weights is not None:
        source = load_weights(
            torch_model, weights, prefix=weights_prefix, trust_pickle=trust_pickle, target=spec
        )
    example = torch.randn(*input_shape, generator=torch.Generator().manual_seed(seed))
    try:
        with quiet_exporter():
            model = _to_onnx(torch_model, example, legacy=legacy, opset=opset, dynamic_batch=dynamic_batch)
    except Exception as exc:
        raise OnnxDreamError(f"{spec}: torch.onnx.export failed: {first_line(exc)}") from None
    name_nodes(model, {name for name, _ in torch_model.named_modules()})
    record_preprocess(model, zoo.EFFICIENTNET_PREPROCESS if spec == zoo.BUILTIN else None, mean, std)
    if source is not None:
        set_json(model, WEIGHTS_KEY, source.to_json())
    comparison, device = _verify(model, torch_model, example)
    return ExportResult(model, comparison, device, source)


def record_preprocess(
    model: onnx.ModelProto,
    known: Mapping[str, object] | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> None:
    """Store the input normalisation in ``model``'s metadata: what is ``known`` of the source model,
    the ``mean`` and ``std`` given by the user taking precedence; nothing when there is neither."""
    preprocess = dict(known or {})
    if mean is not None:
        preprocess["mean"] = list(mean)
    if std is not None:
        preprocess["std"] = list(std)
    if preprocess:
        set_json(model, PREPROCESS_KEY, preprocess)


def require_match(result: ExportResult, what: str, framework: str = "torch") -> None:
    """Raise ``MismatchError`` (exit 1) when ONNX Runtime disagrees with the framework."""
    if not result.ok:
        raise MismatchError(
            f"{what}: ONNX Runtime differs from {framework} by {result.max_abs_diff:.3g} (limit {result.limit:.3g})"
        )
