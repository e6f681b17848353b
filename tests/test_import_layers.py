"""The package's import graph: no cycle (beyond the mirror's nested graphs), and layers that hold."""

from __future__ import annotations

import pytest

from tools.import_layers import collapse, cycles, import_graph, layers, unexpected_cycles

GRAPH = import_graph()


def test_no_import_cycle() -> None:
    assert unexpected_cycles(GRAPH) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_layers_put_every_module_above_what_it_imports() -> None:
    level = {m: n for n, group in enumerate(layers(GRAPH)) for m in group}
    for module, imported in GRAPH.items():
        if module.startswith("onnxdream.mirror"):
            continue  # nested graphs recurse by design
        for target in imported:
            assert level[target] < level[module], f"{module} imports {target} from its own layer or above"


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("onnxdream.io", "onnxdream.model"),
        ("onnxdream.zoo", "onnxdream.torch_export"),
        ("onnxdream.graph", "onnxdream.model"),
        ("onnxdream.model", "onnxdream.commands"),
        ("onnxdream.model", "onnxdream.dream"),
        ("onnxdream.mirror_check", "onnxdream.dream"),
        ("onnxdream.mirror_check", "onnxdream.commands"),
        ("onnxdream.names", "onnxdream.commands"),
        ("onnxdream.mirror", "onnxdream.dream"),
        *[
            ("onnxdream.inputs", verb)
            for verb in ("onnxdream.dream", "onnxdream.commands", "onnxdream.mirror_check", "onnxdream.zoo")
        ],
        ("onnxdream.inputs", "onnxdream.torch_export"),
        ("onnxdream.microscope", "onnxdream.commands"),
        ("onnxdream.torch_export", "onnxdream.keras_models"),
        ("onnxdream.keras_models", "onnxdream.torch_export"),
    ],
)
def test_lower_layers_do_not_reach_up(low: str, high: str) -> None:
    reach: set[str] = set()
    todo = [m for m in GRAPH if m == low or m.startswith(low + ".")]
    while todo:
        module = todo.pop()
        for target in GRAPH[module]:
            if target not in reach:
                reach.add(target)
                todo.append(target)
    assert not [m for m in reach if m == high or m.startswith(high + ".")], f"{low} reaches {high}"


def test_collapse_keeps_edges_between_packages() -> None:
    graph = {"p.a.x": {"p.b.y"}, "p.a.z": {"p.a.x"}, "p.b.y": set()}
    assert collapse(graph) == {"p.a": {"p.b"}, "p.b": set()}
