"""Names from the torch exporters' scope evidence: the export naming contract.

Contract (``export`` writes it, ``rename --strategy metadata`` rebuilds it):

- the node that computes a module's output is named exactly the module's qualified name
  (``_blocks.3._depthwise_conv``, ``_fc``); a module called twice gives ``name``, ``name_1``;
- a Conv with BatchNorm fused into it is named after the Conv: parameter names
  (``_blocks.3._depthwise_conv.weight``) outrank the scope the optimiser copied from the BatchNorm;
- other nodes inside a module's scope are ``<module path>/<OpType>``, repeats get ``_1``, ``_2``
  in topological order; nodes of the root module are plain ``<OpType>``.

Scope evidence per node, strongest first: parameter names; ``pkg.torch.onnx.name_scopes`` or
``namespace`` metadata (``torch.onnx.export(dynamo=True)``); legacy node names
``/_blocks.0/_depthwise_conv/Conv`` (``dynamo=False``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection, Mapping

import onnx

from onnxdream.fresh_names import NameAuthority
from onnxdream.graph import GraphIndex
from onnxdream.metadata import get_prop
from onnxdream.names.tensors import module_path

NAME_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
NAMESPACE_KEY = "pkg.torch.onnx.namespace"
_LEGACY_NAME = re.compile(r"^/(?P<path>(?:[^/]+/)*)(?P<op>[A-Za-z]\w*?)(?:_\d+)?$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][\w]*(?:\.[\w]+)+$")


def _parameter_module(node: onnx.NodeProto, initializers: Collection[str]) -> str | None:
    """Module owning the node's torch parameters (``a.b.weight`` + ``a.b.weight_bias`` -> ``a.b``)."""
    modules = {
        name.rsplit(".", 1)[0]
        for name in node.input
        if name in initializers and _PARAM_NAME.match(name) and "::" not in name
    }
    return modules.pop() if len(modules) == 1 else None


def _metadata_scope(node: onnx.NodeProto) -> str | None:
    """Module path from the dynamo exporter's metadata (``None`` when absent)."""
    raw = get_prop(node, NAME_SCOPES_KEY)
    if raw is not None:
        scopes = ast.literal_eval(raw)
        # First entry is the root module (""), last is the FX node itself.
        return scopes[-2] if len(scopes) >= 2 else ""
    raw = get_prop(node, "namespace") or get_prop(node, NAMESPACE_KEY)
    if raw is not None:
        parts = [part.split(": ", 1)[0] for part in raw.split("/")]
        return parts[-2] if len(parts) >= 2 else ""
    return None


def _legacy_scope(node: onnx.NodeProto, modules: Collection[str] | None) -> str | None:
    """Module path from a TorchScript-exporter node name ``/a/b.c/Op_3`` -> ``a.b.c``.

    A segment is either relative to the previous one (``/_blocks.0/_depthwise_conv``) or,
    for children of a called container, repeats its name (``/stem/stem.0``); a second call of
    a module carries a suffix (``_swish_1``).
    """
    match = _LEGACY_NAME.match(node.name)
    if not match or match["op"] != node.op_type:
        return None
    segments = [s for s in match["path"].split("/") if s]
    path = module_path(segments)
    if modules is not None and path not in modules:
        plain = module_path([re.sub(r"_\d+$", "", s) for s in segments])
        path = plain if plain in modules else path
    return path


def node_scopes(index: GraphIndex, modules: Collection[str] | None = None) -> dict[int, str]:
    """Module path of every node with scope evidence (node index -> path, ``""`` = root)."""
    scopes: dict[int, str] = {}
    for i, node in enumerate(index.nodes):
        for scope in (
            _parameter_module(node, index.initializers),
            _metadata_scope(node),
            _legacy_scope(node, modules),
        ):
            if scope is not None:
                scopes[i] = scope
                break
    return scopes


def _inside(path: str, scope: str) -> bool:
    return bool(scope) and (path == scope or path.startswith((scope + ".", scope + "/")))


def names_from_metadata(
    index: GraphIndex,
    modules: Collection[str] | None = None,
    scope_names: Mapping[str, str] | None = None,
) -> dict[int, str]:
    """Names per the export contract for every node with scope evidence.

    Args:
        index: the exported model's graph (not modified).
        modules: qualified module names of the torch model, when known (sharpens legacy names).
        scope_names: module path -> the name to give it instead (a Keras layer path such as
            ``mobilenetv2_1.00_224/block_13_expand``, whose nesting is written with ``/``).

    Returns:
        Node index -> name, unique among the returned names.
    """
    scopes = node_scopes(index, modules)
    if scope_names:
        scopes = {i: scope_names.get(scope, scope) for i, scope in scopes.items()}
    bases: dict[int, str] = {}
    for i in index.order:
        if i not in scopes:
            continue
        node, scope = index.nodes[i], scopes[i]
        users = [u for out in node.output if out for u in index.consumers.get(out, [])]
        is_output = any(out in index.graph_outputs for out in node.output) or any(
            not _inside(scopes.get(u, ""), scope) for u in users
        )
        if not scope:
            base = node.op_type
        elif is_output:
            base = scope
        else:
            base = f"{scope}/{node.op_type}"
        bases[i] = base
    # A repeated base gets _1, _2, ... in graph order, never taking a base another node has.
    authority = NameAuthority(reserved=bases.values())
    return {i: authority.claim(base) for i, base in bases.items()}
