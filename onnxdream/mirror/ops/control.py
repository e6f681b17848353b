"""Control flow: If, Loop and Scan, with their subgraphs run as nested mirrors."""

from __future__ import annotations

from typing import Any

import torch

from onnxdream.mirror.ops._common import norm_axis
from onnxdream.mirror.registry import Converted, NodeView, converter
from onnxdream.mirror.subgraph import Body, implicit_positions


def _single(outs: list[Any]) -> Any:
    return outs[0] if len(outs) == 1 else outs


@converter("If", 1)
def if_(node: NodeView) -> Converted:
    then_body, else_body = Body(node, "then_branch"), Body(node, "else_branch")
    implicit = node.implicit

    def run(cond: torch.Tensor, *outer: torch.Tensor) -> Any:
        scope = dict(zip(implicit, outer, strict=True))
        body = then_body if bool(cond.reshape(-1)[0]) else else_body
        return _single(body([], scope))

    return node.call(run, 0, *implicit_positions(node))


def _stack(items: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(items) if items else torch.empty(0)


@converter("Loop", 1)
def loop(node: NodeView) -> Converted:
    body = Body(node, "body")
    n_in, implicit = len(node.inputs), node.implicit
    n_state = n_in - 2

    def run(*args: Any) -> Any:
        trips, cond, *states = args[:n_in]
        scope = dict(zip(implicit, args[n_in:], strict=True))
        limit = None if trips is None else int(trips.reshape(-1)[0])
        keep = torch.tensor(True) if cond is None else cond.reshape(()).to(torch.bool)
        scans: list[list[torch.Tensor]] = []
        i = 0
        while (limit is None or i < limit) and bool(keep):
            outs = body([torch.tensor(i, dtype=torch.int64), keep, *states], scope)
            keep, states = outs[0].reshape(()).to(torch.bool), outs[1 : 1 + n_state]
            if not scans:
                scans = [[] for _ in outs[1 + n_state :]]
            for acc, value in zip(scans, outs[1 + n_state :], strict=True):
                acc.append(value)
            i += 1
        n_scan = len(body.outputs) - 1 - n_state
        stacked = [_stack(acc) for acc in scans] if scans else [torch.empty(0)] * n_scan
        return _single([*states, *stacked])

    return node.call(run, *range(n_in), *implicit_positions(node))


def _scan(
    body: Body,
    states: list[torch.Tensor],
    xs: list[torch.Tensor],
    in_axes: list[int],
    in_rev: list[int],
    out_axes: list[int],
    out_rev: list[int],
    scope: dict[str, Any],
) -> list[torch.Tensor]:
    axes = [norm_axis(a, x.dim()) for a, x in zip(in_axes, xs, strict=True)]
    steps = xs[0].shape[axes[0]]
    collected: list[list[torch.Tensor]] = []
    for t in range(steps):
        elems = [x.select(a, steps - 1 - t if r else t) for x, a, r in zip(xs, axes, in_rev, strict=True)]
        outs = body([*states, *elems], scope)
        states = outs[: len(states)]
        if not collected:
            collected = [[] for _ in outs[len(states) :]]
        for acc, value in zip(collected, outs[len(states) :], strict=True):
            acc.append(value)
    results = []
    for k, acc in enumerate(collected):
        y = torch.stack(acc[::-1] if out_rev[k] else acc)
        results.append(y.movedim(0, norm_axis(out_axes[k], y.dim())))
    return [*states, *results]


@converter("Scan", 9)
def scan(node: NodeView) -> Converted:
    body = Body(node, "body")
    n_in, implicit = len(node.inputs), node.implicit
    n_scan = node.attr("num_scan_inputs")
    n_out_scan = len(body.outputs) - (n_in - n_scan)
    in_axes = node.attr("scan_input_axes") or [0] * n_scan
    in_rev = node.attr("scan_input_directions") or [0] * n_scan
    out_axes = node.attr("scan_output_axes") or [0] * n_out_scan
    out_rev = node.attr("scan_output_directions") or [0] * n_out_scan

    def run(*args: Any) -> Any:
        scope = dict(zip(implicit, args[n_in:], strict=True))
        values = list(args[:n_in])
        states, xs = values[: n_in - n_scan], values[n_in - n_scan :]
        return _single(_scan(body, states, xs, in_axes, in_rev, out_axes, out_rev, scope))

    return node.call(run, *range(n_in), *implicit_positions(node))


@converter("Scan", 8)
def scan_8(node: NodeView) -> Converted:
    # Opset 8: a leading batch axis on every state and scan input, scanned along axis 1.
    body = Body(node, "body")
    n_in, implicit = len(node.inputs), node.implicit
    n_scan = node.attr("num_scan_inputs")
    rev = node.attr("directions") or [0] * n_scan
    n_out_scan = len(body.outputs) - (n_in - 1 - n_scan)

    def run(lens: torch.Tensor | None, *args: Any) -> Any:
        scope = dict(zip(implicit, args[n_in - 1 :], strict=True))
        values = list(args[: n_in - 1])
        states, xs = values[: len(values) - n_scan], values[len(values) - n_scan :]
        if lens is not None and bool((lens != xs[0].shape[1]).any()):
            raise node.unsupported("sequence_lens shorter than the scanned axis")
        per_batch = [
            _scan(
                body,
                [s[b] for s in states],
                [x[b] for x in xs],
                [0] * n_scan,
                rev,
                [0] * n_out_scan,
                [0] * n_out_scan,
                scope,
            )
            for b in range(xs[0].shape[0])
        ]
        return _single([torch.stack(parts) for parts in zip(*per_batch, strict=True)])

    return node.call(run, *range(n_in), *implicit_positions(node))
