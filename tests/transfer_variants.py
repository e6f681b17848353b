"""Transfer-learning variants of EfficientNet-Lite0 and their ground-truth names.

Used by the reference-matching tests, ``tools/bench_reference.py`` and ``tools/transfer_demo.py``
(imported as ``from tests import transfer_variants``, with the repository root on ``sys.path``).

A *variant* is the pretrained network wrapped or changed the way users change it (a new head,
``nn.Sequential(pretrained, head)``, layers inserted before the head, the classifier replaced),
fine-tuned for a few seeded steps on random data, optionally drifted, exported by one exporter,
and optionally stripped of names and metadata and shuffled.

Ground truth is read from the export itself *before* stripping: a node's module path comes from
its parameter names (``backbone._blocks.3._depthwise_conv.weight``), else the exporter's scope
metadata (``pkg.torch.onnx.name_scopes``), else the legacy exporter's node name
(``/0/_blocks.3/_swish/Clip``). Wrapper prefixes are removed, the legacy exporter's call-count
suffixes (``_swish_1``) folded back onto the module (``_swish``), and the op normalised
(fused or not, a Conv is a ``conv``; Flatten and Reshape are ``reshape``; GlobalAveragePool and a
spatial ReduceMean are ``gap``). A node's key is ``path|class|k``, k counting equal
(path, class) pairs in topological order. *Backbone nodes* are the target's non-constant nodes
inside the pretrained network whose key the reference also has; their true name is the name of
the reference node with that key. *Head nodes* are the non-constant nodes of the new modules
(and of the wrapper's own ``forward``): they must get no reference name at all.
"""

from __future__ import annotations

import ast
import copy
import random
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from onnxdream.builtin import builtin_model_path
from onnxdream.graph import GraphIndex
from onnxdream.torch_export import quiet_exporter
from onnxdream.zoo import efficientnet_lite0

MODEL_KINDS = ("finetuned", "sequential", "inserted", "replaced", "reinit")
"""How the pretrained network is changed (see :func:`build_model`)."""

EXPORTERS = {
    "dynamo": {"dynamo": True},
    "dynamo-opset18": {"dynamo": True, "opset_version": 18},
    "legacy-opset17": {"dynamo": False, "opset_version": 17},
    "legacy-opset11": {"dynamo": False, "opset_version": 11},
    "legacy-opset20-bn": {"dynamo": False, "opset_version": 20, "do_constant_folding": False},
}
"""Exporter settings by id. ``legacy-opset20-bn`` keeps BatchNormalization and separate Pads."""

DRIFTS = ("none", "small", "large")
"""``small``: 1e-3 relative noise on every parameter; ``large``: 30-100% on the last blocks."""


class FineTuned(nn.Module):
    """The pretrained network's features, then a new head: ``fine_tune_conv1`` and a classifier.

    Args:
        backbone: the pretrained EfficientNet (its ``extract_features`` is used).
        classes: outputs of the new classifier.
        inserted: add a Conv-BN-ReLU6 block between the features and the head.
    """

    def __init__(self, backbone: nn.Module, classes: int = 10, inserted: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.inserted = (
            nn.Sequential(nn.Conv2d(1280, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6())
            if inserted
            else None
        )
        self.fine_tune_conv1 = nn.Conv2d(1280, 256, 1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(256, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.backbone.extract_features(x)
        if self.inserted is not None:
            x = self.inserted(x)
        x = self.pool(self.relu(self.fine_tune_conv1(x)))
        return self.classifier(torch.flatten(x, 1))


@dataclass(frozen=True)
class Layout:
    """Where the pretrained network sits in a variant.

    Attributes:
        prefix: module path of the pretrained network (``backbone``, ``0``, or ``""``).
        head: top-level module names that are new.
        root_is_head: whether ops in the top module's own ``forward`` belong to the head.
    """

    prefix: str
    head: frozenset[str]
    root_is_head: bool


def build_model(kind: str, seed: int = 0) -> tuple[nn.Module, Layout]:
    """A transfer-learning model of the given kind, freshly initialised head, eval mode.

    - ``finetuned``: :class:`FineTuned` (prefix ``backbone.``);
    - ``sequential``: ``nn.Sequential(pretrained, nn.Linear(1000, 10))`` (prefix ``0.``);
    - ``inserted``: :class:`FineTuned` with a Conv-BN-ReLU6 block before the head;
    - ``replaced``: the pretrained network with ``_fc`` replaced by ``nn.Linear(1280, 10)``;
    - ``reinit``: ``_fc`` replaced by a fresh ``nn.Linear(1280, 1000)``: same shape, new weights.
    """
    torch.manual_seed(seed)
    pretrained = efficientnet_lite0()
    if kind in ("finetuned", "inserted"):
        head = {"fine_tune_conv1", "relu", "pool", "classifier", "inserted"}
        model = FineTuned(pretrained, inserted=kind == "inserted")
        return model.eval(), Layout("backbone", frozenset(head), True)
    if kind == "sequential":
        return nn.Sequential(pretrained, nn.Linear(1000, 10)).eval(), Layout("0", frozenset({"1"}), True)
    if kind in ("replaced", "reinit"):
        pretrained._fc = nn.Linear(1280, 10 if kind == "replaced" else 1000)
        return pretrained.eval(), Layout("", frozenset({"_fc"}), False)
    raise ValueError(f"unknown model kind {kind!r}; choose from {', '.join(MODEL_KINDS)}")


def fine_tune(model: nn.Module, steps: int = 3, seed: int = 0, size: int = 64) -> nn.Module:
    """Train every parameter for a few SGD steps on random images and labels (CPU, seeded)."""
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for _ in range(steps):
        logits = model(torch.randn(4, 3, size, size, generator=generator))
        labels = torch.randint(0, logits.shape[1], (4,), generator=generator)
        optimiser.zero_grad()
        nn.functional.cross_entropy(logits, labels).backward()
        optimiser.step()
    return model.eval()


def drift(model: nn.Module, level: str, layout: Layout, seed: int = 0) -> nn.Module:
    """Add Gaussian noise, relative to each parameter's standard deviation, in place.

    ``small``: 1e-3 on every parameter; ``large``: from 30% on ``_blocks.12`` rising to 100% on
    ``_conv_head`` (and its BatchNorm ``_bn1``); ``none``: nothing.
    """
    if level == "none":
        return model
    generator = torch.Generator().manual_seed(seed)
    prefix = f"{layout.prefix}." if layout.prefix else ""
    large = {f"{prefix}_blocks.{b}.": 0.3 + 0.7 * (b - 12) / 4 for b in range(12, 16)}
    large.update({f"{prefix}_conv_head.": 1.0, f"{prefix}_bn1.": 1.0})
    with torch.no_grad():
        for name, param in model.named_parameters():
            if level == "small":
                scale = 1e-3
            else:
                scale = next((s for p, s in large.items() if name.startswith(p)), 0.0)
            if scale and param.numel() > 1:
                noise = torch.randn(param.shape, generator=generator)
                param.add_(noise * scale * param.std())
    return model


def export(model: nn.Module, exporter: str, size: int = 224) -> onnx.ModelProto:
    """Export ``model`` with the exporter settings ``EXPORTERS[exporter]`` (quietly)."""
    settings = EXPORTERS[exporter]
    with tempfile.TemporaryDirectory() as tmp, quiet_exporter():
        path = Path(tmp) / "model.onnx"
        torch.onnx.export(model, (torch.randn(1, 3, size, size),), str(path), **settings)
        return onnx.load(str(path))


# ---------------------------------------------------------------------------------------------
# Ground truth


_GENERATED_WEIGHT = re.compile(r"^(onnx::|val_|_val_)|^\d+$")
_WEIGHTED_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization"}
_CLASS = {
    "Conv": "conv",
    "Gemm": "dense",
    "MatMul": "dense",
    "Flatten": "reshape",
    "Reshape": "reshape",
    "GlobalAveragePool": "gap",
    "ReduceMean": "gap",
}


def raw_path(node: onnx.NodeProto) -> str | None:
    """Module path of a node as exported: parameter stem, scope metadata, legacy node name
    (``/0/_blocks.3/_swish/Clip``), or an export-contract name (``_blocks.3._swish``,
    ``_blocks.3/Add``, ``Reshape`` for the root)."""
    if node.op_type in _WEIGHTED_OPS and len(node.input) > 1:
        weight = node.input[1]
        if "." in weight and not _GENERATED_WEIGHT.search(weight):
            return weight.rsplit(".", 1)[0]
    for entry in node.metadata_props:
        if entry.key == "pkg.torch.onnx.name_scopes":
            scopes = ast.literal_eval(entry.value)
            return scopes[-2] if len(scopes) >= 2 else ""
    if node.name.startswith("/"):
        return ".".join(node.name.split("/")[1:-1])
    if re.fullmatch(rf"{node.op_type}(_\d+)?", node.name):
        return ""  # the export contract's name for a helper of the root module
    if node.name:
        return node.name.split("/")[0]
    return None


def _fold_call_suffix(path: str, modules: set[str]) -> str:
    """``_blocks.0._swish_1`` -> ``_blocks.0._swish`` when only the latter is a module."""
    parts = path.split(".") if path else []
    for i, part in enumerate(parts):
        here = ".".join(parts[: i + 1])
        base = re.sub(r"_\d+$", "", part)
        if here not in modules and base != part and ".".join([*parts[:i], base]) in modules:
            parts[i] = base
    return ".".join(parts)


@dataclass
class Truth:
    """Per node of a model: its key (None for constants and head nodes) and whether it is head."""

    keys: list[str | None]
    head: list[bool]


def node_keys(model: onnx.ModelProto, layout: Layout, modules: set[str]) -> Truth:
    """Keys ``path|class|k`` of the nodes of the pretrained network inside ``model``."""
    index = GraphIndex(model.graph)
    keys: list[str | None] = [None] * len(index.nodes)
    head = [False] * len(index.nodes)
    counts: dict[tuple[str, str], int] = {}
    for i in index.order:
        node = index.nodes[i]
        if index.is_constant(i):
            continue
        path = raw_path(node)
        if path is None:
            raise ValueError(f"node {i} ({node.op_type}) has no module path to derive its ground truth")
        top = path.split(".")[0]
        if layout.prefix and (path == layout.prefix or path.startswith(layout.prefix + ".")):
            path = path[len(layout.prefix) + 1 :]
        elif top in layout.head or (path == "" and layout.root_is_head):
            head[i] = True
            continue
        path = _fold_call_suffix(path, modules)
        klass = _CLASS.get(node.op_type, node.op_type)
        k = counts.get((path, klass), 0)
        counts[(path, klass)] = k + 1
        keys[i] = f"{path}|{klass}|{k}"
    return Truth(keys, head)


def backbone_modules() -> set[str]:
    """Module paths of the pretrained network (``""`` for its root)."""
    return {name for name, _ in efficientnet_lite0().named_modules()}


# ---------------------------------------------------------------------------------------------
# Losing names


def strip(model: onnx.ModelProto, style: str = "empty") -> onnx.ModelProto:
    """A copy with every trace of names gone: node names (``""`` or ``node_<Op>_<n>``), node and
    doc metadata, initializer names (``w<n>``) and intermediate tensor names (``t<n>``).

    Graph input and output names are kept, as every exporter keeps them.
    """
    out = copy.deepcopy(model)
    graph = out.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    inits = {t.name for t in graph.initializer}
    renamed: dict[str, str] = {}
    for n, tensor in enumerate(graph.initializer):
        renamed[tensor.name] = f"w{n}"
    for node in graph.node:
        for out_name in node.output:
            if out_name and out_name not in keep and out_name not in renamed:
                renamed[out_name] = f"t{len(renamed)}"
    for tensor in graph.initializer:
        tensor.name = renamed[tensor.name]
    for value in graph.input:
        if value.name in inits:
            value.name = renamed[value.name]
    del graph.value_info[:]
    for n, node in enumerate(graph.node):
        node.name = "" if style == "empty" else f"node_{node.op_type}_{n}"
        node.doc_string = ""
        del node.metadata_props[:]
        for j, x in enumerate(node.input):
            node.input[j] = renamed.get(x, x)
        for j, x in enumerate(node.output):
            node.output[j] = renamed.get(x, x)
    return out


def shuffle(model: onnx.ModelProto, seed: int = 0) -> tuple[onnx.ModelProto, list[int]]:
    """A copy whose nodes are listed in another valid topological order, and that order.

    Returns:
        (model, perm) where new node ``i`` is old node ``perm[i]``.
    """
    index = GraphIndex(model.graph)
    rng = random.Random(seed)
    indegree = [len({index.producer[x] for x in n.input if x in index.producer}) for n in index.nodes]
    ready = [i for i, d in enumerate(indegree) if d == 0]
    perm: list[int] = []
    while ready:
        i = ready.pop(rng.randrange(len(ready)))
        perm.append(i)
        for c in {c for out in index.nodes[i].output if out for c in index.consumers.get(out, [])}:
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
    out = copy.deepcopy(model)
    nodes = [copy.deepcopy(index.nodes[i]) for i in perm]
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out, perm


# ---------------------------------------------------------------------------------------------
# Cases and their accuracy


@dataclass
class Case:
    """A target model and, per node, its ground truth."""

    model: onnx.ModelProto
    truth: Truth


class Variants:
    """Builds variants once per process: one fine-tuned model per (kind, drift), one export per
    (kind, drift, exporter). Exports take seconds each; tests share one instance per session."""

    def __init__(self, steps: int = 3, seed: int = 0) -> None:
        self.steps, self.seed = steps, seed
        self._models: dict[tuple[str, str], tuple[nn.Module, Layout]] = {}
        self._cases: dict[tuple[str, str, str], Case] = {}
        self._modules = backbone_modules()

    def model(self, kind: str, level: str = "none") -> tuple[nn.Module, Layout]:
        """The fine-tuned (and drifted) torch model of a kind, and where its backbone sits."""
        if (kind, level) not in self._models:
            model, layout = build_model(kind, self.seed)
            drift(fine_tune(model, steps=self.steps, seed=self.seed), level, layout, self.seed)
            self._models[(kind, level)] = (model, layout)
        return self._models[(kind, level)]

    def case(self, kind: str, exporter: str, level: str = "none") -> Case:
        """The exported variant with its ground truth (shared: copy before changing it)."""
        if (kind, exporter, level) not in self._cases:
            model, layout = self.model(kind, level)
            exported = export(model, exporter)
            self._cases[(kind, exporter, level)] = Case(exported, node_keys(exported, layout, self._modules))
        return self._cases[(kind, exporter, level)]


def lose_names(case: Case, style: str | None = "empty", shuffle_seed: int | None = None) -> Case:
    """Strip names (``style`` None: keep them) and/or shuffle nodes; the truth follows the nodes."""
    model, truth = case.model, case.truth
    if shuffle_seed is not None:
        model, perm = shuffle(model, shuffle_seed)
        truth = Truth([truth.keys[i] for i in perm], [truth.head[i] for i in perm])
    if style is not None:
        model = strip(model, style)
    return Case(model, truth)


def reference_model(legacy: bool = False) -> tuple[onnx.ModelProto, dict[str, str]]:
    """The built-in pretrained network as exported by ``onnxdream export`` (current exporter, or
    the legacy one; names per the export contract), and ground-truth key -> its node name."""
    model = onnx.load(str(builtin_model_path(legacy=legacy)))
    truth = node_keys(model, Layout("", frozenset(), False), backbone_modules())
    names = {key: node.name for key, node in zip(truth.keys, model.graph.node, strict=True) if key}
    return model, names


@dataclass
class Accuracy:
    """How a list of matches compares with the ground truth.

    Attributes:
        conv_total / conv_correct: backbone Conv/Gemm/MatMul nodes with a reference counterpart,
            and how many got exactly the counterpart's name.
        total / correct: the same over all backbone nodes with a counterpart.
        head_named: head nodes that got any reference name (must be 0).
        wrong: backbone nodes named, but not with their counterpart's name (or without one).
    """

    conv_total: int
    conv_correct: int
    total: int
    correct: int
    head_named: int
    wrong: int

    def row(self) -> str:
        """``conv 49/49 100.0%  all 91/92 98.9%  head 0  wrong 0``."""
        pct = lambda a, b: 100.0 * a / b if b else 100.0  # noqa: E731
        return (
            f"conv {self.conv_correct}/{self.conv_total} {pct(self.conv_correct, self.conv_total):5.1f}%  "
            f"all {self.correct}/{self.total} {pct(self.correct, self.total):5.1f}%  "
            f"head {self.head_named}  wrong {self.wrong}"
        )


def accuracy(case: Case, matches: list, reference_names: dict[str, str]) -> Accuracy:
    """Score matches (objects with ``node`` and ``name``) against the case's ground truth."""
    given = {m.node: m.name for m in matches}
    conv_total = conv_correct = total = correct = head_named = wrong = 0
    for i, node in enumerate(case.model.graph.node):
        key, name = case.truth.keys[i], given.get(i)
        if case.truth.head[i]:
            head_named += name is not None
            continue
        expected = reference_names.get(key) if key else None
        if expected is None:
            wrong += name is not None
            continue
        total += 1
        correct += name == expected
        wrong += name is not None and name != expected
        if node.op_type in ("Conv", "Gemm", "MatMul"):
            conv_total += 1
            conv_correct += name == expected
    return Accuracy(conv_total, conv_correct, total, correct, head_named, wrong)
