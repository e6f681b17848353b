"""GraphIndex: topological order, constants, scopes, boundary outputs and layer resolution."""

from __future__ import annotations

import onnx
import pytest

from onnxdream.errors import UnknownLayerError
from onnxdream.graph import GraphIndex, scope_at_depth, scopes_of
from tests.mirror_helpers import parse

# Nodes are listed out of order in the file (the Add comes first); names in brackets:
#
#   x -> [blk.0/conv] Relu -> a -> [blk.0/act] Neg -> b --+-> [out] Add -> y
#    \-> [blk.1] Sigmoid -> c ---------------------------'
#   w (initializer) -> [const] Abs -> wc -> [blk.0/scale] Mul(a, wc) -> m (unused: a dead end)
GRAPH_TEXT = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y)
<float[2] w = {1.0, -2.0}>
{ y = Add (b, c)
  a = Relu (x)
  b = Neg (a)
  c = Sigmoid (x)
  wc = Abs (w)
  m = Mul (a, wc) }
"""
NAMES = ["out", "blk.0/conv", "blk.0/act", "blk.1", "const", "blk.0/scale"]


@pytest.fixture
def index() -> GraphIndex:
    model = onnx.parser.parse_model(GRAPH_TEXT)
    for node, name in zip(model.graph.node, NAMES, strict=True):
        node.name = name
    return GraphIndex(model.graph, "g.onnx")


def _names(index: GraphIndex, nodes) -> list[str]:
    return [index.nodes[i].name for i in nodes]


@pytest.mark.parametrize(
    ("name", "scopes"),
    [("a.b/c", ["a", "a.b"]), ("/layer1/conv", ["/layer1"]), ("plain", []), ("", [])],
    ids=["dot-and-slash", "leading-slash", "no-separator", "empty"],
)
def test_scopes_of(name: str, scopes: list[str]):
    assert scopes_of(name) == scopes


def test_scope_at_depth():
    assert scope_at_depth("_blocks.3._bn1", 2) == "_blocks.3"
    assert scope_at_depth("_blocks.3._bn1", 1) == "_blocks"
    assert scope_at_depth("_blocks.3._bn1", 5) == "_blocks.3._bn1"


def test_maps_and_graph_inputs(index: GraphIndex):
    assert index.producer["b"] == 2 and index.producer["y"] == 0
    assert index.consumers["a"] == [2, 5]
    assert index.initializers == {"w"}
    assert index.graph_inputs == ["x"] and index.graph_outputs == ["y"]


def test_order_is_topological_with_ties_broken_by_file_position(index: GraphIndex):
    # Among the nodes whose inputs are ready, the one earliest in the file runs first: "out"
    # (file position 0) runs as soon as it can, before "const" and "blk.0/scale".
    assert _names(index, index.order) == ["blk.0/conv", "blk.0/act", "blk.1", "out", "const", "blk.0/scale"]
    assert index.position[0] == 3


def test_constant_tensors_fold_from_initializers_only(index: GraphIndex):
    assert index.constant_tensors == {"w", "wc"}
    assert index.is_constant(4) and not index.is_constant(5)


def test_activations_prefer_used_outputs(index: GraphIndex):
    assert index.activations(1) == ("a",)
    assert index.activations(5) == ("m",)  # unused, but its only output


def test_scopes_and_layer_names(index: GraphIndex):
    assert {k: sorted(_names(index, v)) for k, v in index.scopes.items()} == {
        "blk": ["blk.0/act", "blk.0/conv", "blk.0/scale", "blk.1"],
        "blk.0": ["blk.0/act", "blk.0/conv", "blk.0/scale"],
    }
    assert index.layer_names() == [
        "blk",
        "blk.0",
        "blk.0/conv",
        "blk.0/act",
        "blk.1",
        "out",
        "const",
        "blk.0/scale",
    ]


def test_a_node_named_like_a_scope_belongs_to_it():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2] x) => (float[2] y) { a = Relu (x)
      y = Neg (a) }
    """)
    model.graph.node[0].name = "head/act"
    model.graph.node[1].name = "head"
    index = GraphIndex(model.graph)
    assert sorted(index.scopes["head"]) == [0, 1]
    assert index.resolve("head").kind == "node"  # an exact node name wins over the scope


def test_boundary_outputs_are_the_tensors_used_outside(index: GraphIndex):
    assert index.boundary_outputs(index.scopes["blk.0"]) == ("b",)
    assert index.boundary_outputs(index.scopes["blk"]) == ("b", "c")
    assert index.boundary_outputs([0]) == ("y",)  # a graph output counts as used outside


def test_resolve_node_scope_and_tensor(index: GraphIndex):
    node = index.resolve("blk.0/act")
    assert (node.kind, _names(index, node.nodes), node.outputs) == ("node", ["blk.0/act"], ("b",))
    scope = index.resolve("blk.0")
    assert (scope.kind, _names(index, scope.nodes), scope.outputs) == (
        "scope",
        ["blk.0/conv", "blk.0/act", "blk.0/scale"],
        ("b",),
    )
    tensor = index.resolve("c")
    assert (tensor.kind, tensor.nodes, tensor.outputs) == ("tensor", (3,), ("c",))


def test_unknown_layer_names_the_file_and_suggests(index: GraphIndex):
    with pytest.raises(
        UnknownLayerError, match=r"^g\.onnx: unknown layer 'blk\.0/ac'; did you mean 'blk\.0/act'"
    ):
        index.resolve("blk.0/ac")
    with pytest.raises(UnknownLayerError, match=r"^g\.onnx: unknown layer 'zzz'$"):
        index.resolve("zzz")


def test_resolve_many_drops_duplicates_and_validates_all(index: GraphIndex):
    assert [layer.name for layer in index.resolve_many(["c", "blk", "c"])] == ["c", "blk"]
    with pytest.raises(UnknownLayerError, match="'nope'"):
        index.resolve_many(["c", "nope"])


def test_match_is_a_glob_over_layer_names_in_order(index: GraphIndex):
    assert index.match("blk.0/*") == ["blk.0/conv", "blk.0/act", "blk.0/scale"]
    assert index.match("blk.?") == ["blk.0", "blk.1"]
    assert index.match("nothing*") == []


def test_first_of_repeated_names_wins():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2] x) => (float[2] y) { a = Relu (x)
      y = Neg (a) }
    """)
    for node in model.graph.node:
        node.name = "dup"
    index = GraphIndex(model.graph)
    assert index.by_name == {"dup": 0}
    assert index.resolve("dup").outputs == ("a",)


# The If's then branch reads d and wa from the enclosing graph, its else branch x:
#
#   x -> [0] Relu -> a -> [2] Abs -> d --.
#   w (initializer) -> [3] Abs -> wa ----+--> [4] If(c) -> y
#   x ----------------------------------'
#   x -> [1] Neg -> b -> [5] Sigmoid -> z
SUBGRAPH_TEXT = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x, bool c) => (float[2] y, float[2] z)
<float[2] w = {1.0, -2.0}>
{ a = Relu (x)
  b = Neg (x)
  d = Abs (a)
  wa = Abs (w)
  y = If (c) <then_branch = then () => (float[2] t) { t = Mul (d, wa) },
              else_branch = else () => (float[2] e) { e = Identity (x) }>
  z = Sigmoid (b) }
"""


@pytest.fixture
def branching() -> GraphIndex:
    return GraphIndex(parse(SUBGRAPH_TEXT).graph)


def test_reads_are_the_inputs_then_what_subgraphs_read_from_outside(branching: GraphIndex):
    assert branching.reads(4) == ("c", "d", "wa", "x")
    assert branching.reads(2) == ("a",)


def test_upstream_follows_subgraph_reads(branching: GraphIndex):
    assert sorted(branching.upstream(["y"])) == [0, 2, 3, 4]
    assert sorted(branching.upstream(["z", "b"])) == [1, 5]
    assert list(branching.upstream(["x", "w", "c", ""])) == []  # inputs and initializers: no node


def test_upstream_stops_outside_within_and_takes_other_reads(branching: GraphIndex):
    live = sorted(branching.upstream(["y"], within=lambda i: not branching.is_constant(i)))
    assert live == [0, 2, 4]
    assert list(branching.upstream(["y"], reads=lambda i: branching.nodes[i].input)) == [4]


def test_upstream_is_lazy(branching: GraphIndex):
    walk = branching.upstream(["y"])
    assert next(walk) == 4  # the If itself first: nothing before it was visited
    assert 4 not in set(walk)
