"""The ``tensors`` strategy: names from meaningful output tensor names.

Two kinds of tensor names carry a layer name:

- the legacy torch exporter's ``/<scope>/.../<OpType>[_k]_output_<n>``: the scopes rebuild the
  module path (``/layer1/layer1.0/conv1/Conv_output_0`` -> ``layer1.0.conv1``). As in the export
  naming contract, the node whose output leaves its module is named after the module; the other
  nodes of the module are its helpers, ``<module>/<OpType>[_k]``;
- any other name a person gave (``inception_4c/output``, ``prob``) is used as it is.

Generated names (``r12``, ``onnx::Conv_3``, ``val_7``, ``getitem_3``, numbers) carry nothing.
"""

from __future__ import annotations

import re

from onnxdream.graph import GraphIndex
from onnxdream.names.lost import is_generated

_LEGACY = re.compile(r"/(?:(?P<scopes>.*)/)?(?P<local>[A-Za-z][A-Za-z0-9]*(?:_\d+)?)_output_\d+")


def module_path(scopes: list[str]) -> str:
    """Qualified module name from the legacy exporter's scope list.

    Each scope is either a child's attribute name or already a qualified name
    (``['layer1', 'layer1.0', 'conv1']`` -> ``layer1.0.conv1``).
    """
    path = ""
    for scope in scopes:
        if not scope:
            continue
        path = scope if (not path or scope.startswith(path + ".")) else f"{path}.{scope}"
    return path


def decode_legacy(name: str) -> tuple[str, str] | None:
    """``(module path, local name)`` of a legacy exporter tensor name, or ``None``."""
    match = _LEGACY.fullmatch(name)
    if not match or not match.group("scopes"):
        return None
    path = module_path(match.group("scopes").split("/"))
    return (path, match.group("local")) if path else None


def names_from_tensors(index: GraphIndex) -> dict[int, str]:
    """Node index -> name from its output tensor names, for every node that has a meaningful one."""
    names: dict[int, str] = {}
    graph_outputs = set(index.graph_outputs)
    modules: dict[str, list[tuple[int, str]]] = {}
    for i, node in enumerate(index.nodes):
        for out in node.output:
            decoded = decode_legacy(out)
            if decoded:
                modules.setdefault(decoded[0], []).append((i, decoded[1]))
                break
            if not out.startswith("/") and not is_generated(out):
                names[i] = out
                break
    for path, members in modules.items():
        inside = {i for i, _ in members}
        leaving = [i for i in inside if _leaves(index, i, inside, graph_outputs)]
        for i, local in members:
            names[i] = path if leaving == [i] else f"{path}/{local}"
    return names


def _leaves(index: GraphIndex, i: int, inside: set[int], graph_outputs: set[str]) -> bool:
    """Whether an output of node ``i`` is used outside ``inside`` or is a graph output."""
    for out in index.nodes[i].output:
        if out in graph_outputs:
            return True
        if any(c not in inside for c in index.consumers.get(out, ())):
            return True
    return False
