"""``onnxdream layers``: the table of targetable layers."""

from __future__ import annotations

from typing import Annotated

import typer

from onnxdream.commands.common import guarded, out_console, print_json
from onnxdream.commands.options import JsonOption, MatchOption, ModelArgument, OpTypeOption, TrustPickleOption


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
) -> None:
    """List the layers of MODEL: name, op type, outputs with dtype and shape, origin of the name.

    Examples:

      onnxdream layers model.onnx --depth 2

      onnxdream layers model.onnx --op-type Conv --match '_blocks.8*'

      onnxdream layers model.onnx --json > layers.json
    """
    from rich.table import Table

    from onnxdream.layers import list_layers
    from onnxdream.model import open_model
    from onnxdream.shapes import TensorType

    rows = list_layers(
        open_model(model, external_data=False, trust_pickle=trust_pickle),
        op_types=op_type or (),
        match=match or (),
        depth=depth,
        include_constants=constants,
    )
    if json_output:
        print_json([row.as_json() for row in rows])
        return
    table = Table(title=f"{model} — {len(rows)} layers", title_justify="left")
    table.add_column("name", no_wrap=True)
    for column in ("op", "output", "type", "origin"):
        table.add_column(column, overflow="fold")
    for row in rows:
        types = [
            str(TensorType(d, None if s is None else tuple(s)))
            for d, s in zip(row.dtypes, row.shapes, strict=True)
        ]
        table.add_row(row.name, row.op_type, "\n".join(row.outputs), "\n".join(types), row.origin)
    out_console.print(table)
