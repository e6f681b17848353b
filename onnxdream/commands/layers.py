"""``onnxdream layers``: the table of targetable layers."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from onnxdream.commands.common import guarded, out_console, print_json
from onnxdream.commands.options import (
    JsonOption,
    LayoutOption,
    MatchOption,
    ModelArgument,
    OpTypeOption,
    TrustPickleOption,
)
from onnxdream.layers import list_layers
from onnxdream.layout import input_layout
from onnxdream.model import open_model
from onnxdream.shapes import TensorType


@guarded
def layers_command(
    model: ModelArgument,
    op_type: OpTypeOption = None,
    match: MatchOption = None,
    depth: Annotated[
        int | None, typer.Option(min=1, help="Collapse names into scopes of this many components.")
    ] = None,
    constants: Annotated[bool, typer.Option("--constants", help="Include constant-only nodes.")] = False,
    json_output: JsonOption = False,
    trust_pickle: TrustPickleOption = False,
    layout: LayoutOption = None,
) -> None:
    """List the layers of MODEL: name, op type, outputs with dtype and shape, origin of the name.

    --match takes shell globs (over full names, else the layers' own names: 'block_13_*') or a
    layer's name (its full name, or its last path components when they name one layer), which
    lists that layer's nodes. On a channels-last model each 4-d output says NHWC or NCHW.

    Examples:

      onnxdream layers model.onnx --depth 2

      onnxdream layers model.onnx --op-type Conv --match '_blocks.8*'

      onnxdream layers model.onnx --json > layers.json
    """
    opened = open_model(model, weights=False, trust_pickle=trust_pickle)
    found = input_layout(opened.proto, layout, opened.index)
    rows = list_layers(
        opened,
        op_types=op_type or (),
        match=match or (),
        depth=depth,
        include_constants=constants,
        layout=found.layout,
    )
    if json_output:
        print_json([row.as_json() for row in rows])
        return
    title = f"{model} — {len(rows)} layers"
    if found.channels_last:
        title += f"; input {found.describe()}"
    table = Table(title=title, title_justify="left")
    table.add_column("name", no_wrap=True)
    for column in ("op", "output", "type", "origin"):
        table.add_column(column, overflow="fold")
    for row in rows:
        types = [
            str(TensorType(d, None if s is None else tuple(s)))
            + (f" {order}" if found.channels_last and order and s is not None and len(s) == 4 else "")
            for d, s, order in zip(row.dtypes, row.shapes, row.layouts, strict=True)
        ]
        table.add_row(row.name, row.op_type, "\n".join(row.outputs), "\n".join(types), row.origin)
    out_console.print(table)
