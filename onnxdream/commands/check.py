"""``onnxdream check``: the torch mirror against ONNX Runtime, layer by layer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from onnxdream.commands.common import guarded, out_console, print_json
from onnxdream.commands.options import (
    CompareOrtOptOption,
    DeviceOption,
    JsonOption,
    LayoutOption,
    MatchOption,
    MaxPixelsOption,
    ModelArgument,
    TrustPickleOption,
)
from onnxdream.inputs.feeds import load_input
from onnxdream.inputs.images import MAX_PIXELS
from onnxdream.mirror_check import CheckResult, check
from onnxdream.model import open_model


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _print_table(model: Path, result: CheckResult) -> None:
    first = result.first_diverging
    table = Table(title=f"{model} — mirror vs ONNX Runtime ({result.device})", title_justify="left")
    table.add_column("layer", no_wrap=True)
    table.add_column("shape")
    table.add_column("max abs", justify="right")
    table.add_column("max rel", justify="right")
    table.add_column("ok")
    for layer in result.layers:
        style = "bold red" if layer is first else ("red" if not layer.ok else None)
        mark = (
            "[green]yes[/]"
            if layer.ok
            else ("[bold red]FIRST DIVERGENCE[/]" if layer is first else "[red]no[/]")
        )
        shape = "(" + ", ".join(str(d) for d in layer.shape) + ")"
        table.add_row(layer.name, shape, _number(layer.max_abs), _number(layer.max_rel), mark, style=style)
    if result.layers:
        out_console.print(table)
    for u in result.unsupported:
        out_console.print(f"[red]unsupported:[/] {u.reason}", highlight=False)
    failed = sum(not layer.ok for layer in result.layers)
    if result.ok:
        out_console.print(f"[green]ok[/]: {len(result.layers)} layers match")
    elif result.unsupported:
        out_console.print(f"[red]{len(result.unsupported)} unsupported node(s)[/]; nothing compared")
    else:
        out_console.print(
            f"[red]{failed} of {len(result.layers)} layers differ[/]; first: {first.name!r}", highlight=False
        )


@guarded
def check_command(
    model: ModelArgument,
    input_file: Annotated[
        Path | None,
        typer.Option("--input", help="An image or a .npy array (default: seeded random of the input shape)."),
    ] = None,
    layer: Annotated[
        list[str] | None,
        typer.Option("--layer", "-l", metavar="NAME", help="A layer to compare (repeatable)."),
    ] = None,
    match: MatchOption = None,
    atol: Annotated[float, typer.Option(help="Absolute tolerance, times max(1, max|reference|).")] = 1e-4,
    rtol: Annotated[float, typer.Option(help="Relative tolerance.")] = 1e-3,
    device: DeviceOption = "auto",
    ort_opt: CompareOrtOptOption = "none",
    json_output: JsonOption = False,
    trust_pickle: TrustPickleOption = False,
    max_pixels: MaxPixelsOption = MAX_PIXELS,
    layout: LayoutOption = None,
) -> None:
    """Run the torch mirror and ONNX Runtime on the same input and compare every layer.

    Default layers: every non-constant node output. An element differs when it exceeds both
    atol * max(1, max|reference|) and rtol * |reference|. A scope with several boundary
    outputs is reported as one row per output, named LAYER:TENSOR. Exit 0 when all match,
    1 on a difference or an unsupported op (all are listed), 2 on bad input.

    Examples:

      onnxdream check model.onnx

      onnxdream check model.onnx --layer _blocks.8 --match '_blocks.1*' --json

      onnxdream check model.onnx --input cat.jpg --device cpu
    """
    opened = open_model(model, trust_pickle=trust_pickle)
    feeds = (
        load_input(input_file, opened.proto, max_pixels, opened.source, layout)
        if input_file is not None
        else None
    )
    result = check(
        opened,
        feeds,
        layers=layer or (),
        match=match or (),
        atol=atol,
        rtol=rtol,
        device=device,
        ort_opt=ort_opt,
        input_source=str(input_file),
        layout=layout,
    )
    if json_output:
        print_json(result.to_json())
    else:
        _print_table(model, result)
    if not result.ok:
        raise typer.Exit(1)
