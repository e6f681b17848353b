"""Keras -> ONNX with Keras layer paths on the nodes, through the torch exporter.

Keras 3 layers on the torch backend are ``torch.nn.Module``s, but not registered as each other's
submodules, and Keras calls them through its own ``__call__``: the torch exporter records no
scope for them. During the export each layer's ``call`` is routed through a small module placed
in a tree that mirrors the Keras nesting, so the exporter's name scopes (``pkg.torch.onnx.
name_scopes``) name the layer; those module paths are then mapped back to the Keras layer paths
``model.summary()`` shows, nested with ``/`` (``mobilenetv2_1.00_224/block_13_expand``,
``fine_tune_conv1``). The root model's own name is not part of the paths.

The naming contract is the torch export's (:mod:`onnxdream.names.metadata`): the node computing
a layer's output is named exactly the layer path, the other nodes of a layer
``<layer path>/<OpType>``. Keras works channels-last, so a convolution layer is a Transpose to
NCHW, the Conv, and the Transpose back that computes the layer's (NHWC) output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import onnx

from onnxdream.compare import ATOL, compare
from onnxdream.errors import OnnxDreamError, first_line
from onnxdream.keras_models import application_preprocess, import_keras, load_keras_model
from onnxdream.torch_export import (
    ExportResult,
    check_input_shape,
    name_nodes,
    quiet_exporter,
    record_preprocess,
)


def _scoped_call_type():
    import torch

    class ScopedCall(torch.nn.Module):
        """Runs a Keras layer's ``call`` as a module of the scope tree (so the exporter sees it)."""

        def __init__(self, call) -> None:
            super().__init__()
            object.__setattr__(self, "call", call)  # a plain attribute: not a submodule

        def forward(self, *args, **kwargs):
            return self.call(*args, **kwargs)

    return ScopedCall


def _root_type():
    import torch

    class KerasRoot(torch.nn.Module):
        """The export's root: calls the Keras model in inference mode; scopes hang below it."""

        def __init__(self, model) -> None:
            super().__init__()
            object.__setattr__(self, "model", model)

        def forward(self, x):
            return self.model(x, training=False)

    return KerasRoot


def _module_key(name: str, parent) -> str:
    """A submodule name for a Keras layer name: torch forbids ``.``, and a name must not be an
    attribute of its parent already (a layer called ``double``, ``train`` or a sibling's name)."""
    key = name.replace(".", "_") or "layer"
    base, n = key, 1
    while hasattr(parent, key):
        key, n = f"{base}_{n}", n + 1
    return key


@contextlib.contextmanager
def keras_scopes(model) -> Iterator[tuple[object, dict[str, str]]]:
    """A torch module that runs ``model`` with every layer in a named scope, and the map from
    those module paths to Keras layer paths; the layers are restored on exit."""
    scoped_call, root = _scoped_call_type(), _root_type()(model)
    scope_names: dict[str, str] = {}
    patched: list[tuple[object, bool, object]] = []
    seen: set[int] = set()

    def attach(parent, layer, module_path: str, keras_path: str) -> None:
        for sub in getattr(layer, "layers", None) or []:
            if id(sub) in seen:  # a layer shared by two models keeps its first scope
                continue
            seen.add(id(sub))
            key = _module_key(sub.name, parent)
            path = f"{module_path}.{key}" if module_path else key
            name = f"{keras_path}/{sub.name}" if keras_path else sub.name
            scope = scoped_call(sub.call)
            parent.add_module(key, scope)
            had_own = "call" in vars(sub)
            patched.append((sub, had_own, vars(sub).get("call")))
            object.__setattr__(sub, "call", scope)
            scope_names[path] = name
            attach(scope, sub, path, name)

    try:
        attach(root, model, "", "")
        yield root, scope_names
    finally:
        for layer, had_own, call in reversed(patched):
            if had_own:
                object.__setattr__(layer, "call", call)
            else:
                object.__delattr__(layer, "call")


def model_input_shape(model) -> tuple[int | None, ...]:
    """The shape of the model's one input, ``None`` where free (the batch first).

    Raises:
        OnnxDreamError: a model with several inputs, or one whose input shape is unknown.
    """
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs:
        if len(inputs) != 1:
            raise OnnxDreamError(f"{model.name}: a Keras model with {len(inputs)} inputs; export takes one")
        return tuple(inputs[0].shape)
    shape = getattr(model, "input_shape", None)
    if not isinstance(shape, tuple) or not shape or isinstance(shape[0], tuple | list):
        raise OnnxDreamError(f"{model.name}: unknown input shape; pass --input-shape, e.g. 1,224,224,3")
    return shape


def default_input_shape(model) -> list[int]:
    """An example input for the model: batch 1, its declared sizes, 224 for free sides."""
    shape = model_input_shape(model)
    return [1, *(224 if d is None else int(d) for d in shape[1:])]


def _verify(onnx_model: onnx.ModelProto, model, example) -> tuple:
    from onnxdream.runtime import make_session

    session = make_session(onnx_model, device="cpu", source="the exported model")
    expected = model(example, training=False)
    expected = expected[0] if isinstance(expected, tuple | list) else expected
    expected = expected.detach().cpu().numpy()
    got = session.run({session.input_names[0]: example.numpy()})[session.output_names[0]]
    return compare(got, expected, ATOL, rtol=0.0), session.device


def export_keras_model(
    model,
    *,
    source: str = "<keras model>",
    opset: int | None = None,
    input_shape: Sequence[int] | None = None,
    dynamic_batch: bool = False,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    seed: int = 0,
) -> ExportResult:
    """Export a Keras 3 model (torch backend) with its layer paths as node names.

    The preprocessing a ``keras.applications`` model expects is recorded (MobileNetV2: inputs
    in [-1, 1]); ``mean``/``std`` override it.

    Raises:
        OnnxDreamError: Keras runs on another backend, a bad input shape, or the exporter fails.
    """
    import torch

    keras = import_keras()
    if keras.backend.backend() != "torch":
        raise OnnxDreamError(
            f"{source}: onnxdream exports Keras models on the torch backend, and Keras runs on "
            f"{keras.backend.backend()!r}; set KERAS_BACKEND=torch"
        )
    shape = list(input_shape) if input_shape is not None else default_input_shape(model)
    check_input_shape(shape)
    declared = model_input_shape(model)
    if len(shape) != len(declared) or any(
        d is not None and d != s for d, s in zip(declared[1:], shape[1:], strict=True)
    ):
        wanted = ",".join("N" if d is None else str(d) for d in declared)
        raise OnnxDreamError(
            f"{source}: input shape {','.join(map(str, shape))} does not fit the model's input ({wanted}, channels last)"
        )
    example = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    dims = ({0: torch.export.Dim("batch", min=1, max=1024)},) if dynamic_batch else None
    try:
        with quiet_exporter(), keras_scopes(model) as (root, scope_names):
            program = torch.onnx.export(
                root, (example,), dynamo=True, opset_version=opset, dynamic_shapes=dims, verbose=False
            )
    except OnnxDreamError:
        raise
    except Exception as exc:
        raise OnnxDreamError(
            f"{source}: torch.onnx.export of the Keras model failed: {first_line(exc)}"
        ) from None
    onnx_model = program.model_proto
    name_nodes(onnx_model, set(scope_names), scope_names)
    record_preprocess(onnx_model, application_preprocess(model), mean, std)
    comparison, device = _verify(onnx_model, model, example)
    return ExportResult(onnx_model, comparison, device)


def export_keras(spec: str, *, trust_pickle: bool = False, **options) -> ExportResult:
    """Load a ``.keras`` / ``.h5`` file (see :func:`load_keras_model`) and export it."""
    model = load_keras_model(spec, trust_pickle=trust_pickle)
    return export_keras_model(model, source=spec, **options)
