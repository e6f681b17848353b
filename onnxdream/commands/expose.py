"""``onnxdream expose-layers``: named layers as extra graph outputs, optionally run once and saved."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import onnx
import typer
from rich.table import Table

from onnxdream.commands.common import err_console, guarded, out_console, print_json, warn
from onnxdream.commands.options import (
    DeviceOption,
    JsonOption,
    LayoutOption,
    MatchOption,
    MaxPixelsOption,
    OpTypeOption,
    OrtOptOption,
    TrustPickleOption,
)
from onnxdream.inputs.images import MAX_PIXELS
from onnxdream.shapes import value_type

if TYPE_CHECKING:
    from onnxdream.surgery import ExposeResult


def npz_keys(exposed: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Archive key -> tensor: ``layer`` for a one-tensor layer, ``layer:k`` (k from 0) otherwise."""
    keys: dict[str, str] = {}
    for layer, tensors in exposed.items():
        if len(tensors) == 1:
            keys[layer] = tensors[0]
        else:
            keys.update({f"{layer}:{k}": t for k, t in enumerate(tensors)})
    return keys


def _warn_ignored(
    input_path: Path, output: Path, in_place: bool, run: Path | None, save: Path | None, ort_set: bool
) -> None:
    if save is not None and run is None:
        warn("--save is ignored without --run (nothing is computed to save)")
    if run is None and ort_set:
        warn("--device/--ort-opt are ignored without --run (the model is not run)")
    if in_place and output.resolve() != input_path.resolve():
        warn("--in-place is ignored: OUT is not the input file")


@guarded
def expose_layers(
    ctx: typer.Context,
    input_path: Annotated[Path, typer.Argument(metavar="IN.onnx", help="Model to read.")],
    output: Annotated[Path, typer.Argument(metavar="OUT.onnx", help="Model to write (atomically).")],
    layer: Annotated[
        list[str] | None,
        typer.Option(
            "--layer",
            "-l",
            metavar="NAME",
            help="Node name, scope (exposes its boundary outputs), tensor name, or a layer's own "
            "name (its last path components, e.g. block_13_expand).",
        ),
    ] = None,
    match: MatchOption = None,
    op_type: OpTypeOption = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", "-x", help="Shell glob of layer names to leave out.")
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Expose every node output that is not a constant.")
    ] = False,
    json_: JsonOption = False,
    trust_pickle: TrustPickleOption = False,
    in_place: Annotated[bool, typer.Option("--in-place", help="Allow OUT to be the input file.")] = False,
    run: Annotated[
        Path | None,
        typer.Option("--run", metavar="INPUT", help="Run the exposed model once on an image or a .npy file."),
    ] = None,
    save: Annotated[
        Path | None,
        typer.Option("--save", metavar="FILE.npz", help="With --run: save the exposed activations."),
    ] = None,
    device: DeviceOption = "auto",
    ort_opt: OrtOptOption = "all",
    max_pixels: MaxPixelsOption = MAX_PIXELS,
    layout: LayoutOption = None,
) -> None:
    """Expose layers as extra graph outputs, addressed by layer name.

    Original outputs stay first and unchanged; new outputs get dtype and shape from shape inference
    (where it gives none: dtype and rank from one ONNX Runtime run, on the --run input if given).
    Model metadata [bold]onnxdream.exposed[/] maps each layer to its output tensors.
    A scope exposes its boundary outputs; weights kept in external data stay external (OUT.onnx.data).

    [bold]--run[/]: an image is resized to the input's fixed H and W and normalised with the model's
    [italic]onnxdream.preprocess[/] metadata (ImageNet statistics if absent), in the input's layout
    (NHWC for channels-last models, or --layout); a .npy is fed as is.
    [bold]--save[/]: an .npz keyed by layer name ([italic]layer[/] for one tensor, [italic]layer:0[/],
    [italic]layer:1[/], ... for a scope with several boundary outputs).

    Examples:

      onnxdream expose-layers m.onnx out.onnx --layer _blocks.8

      onnxdream expose-layers m.onnx out.onnx --match '_blocks.1?' --exclude '_blocks.15' --json

      onnxdream expose-layers googlenet.onnx out.onnx --layer inception_4c/output

      onnxdream expose-layers m.onnx out.onnx --all --op-type Conv --ort-opt none

      onnxdream expose-layers m.onnx out.onnx -l _blocks.8 --run photo.jpg --save acts.npz
    """
    from onnxdream import io
    from onnxdream.inputs.feeds import load_input
    from onnxdream.layout import parse_layout
    from onnxdream.model import open_model
    from onnxdream.paths import check_writes
    from onnxdream.runtime import check_settings
    from onnxdream.surgery import expose

    check_settings(device, ort_opt)  # even when nothing runs: a typo is a typo
    ort_set = any(ctx.get_parameter_source(p).name != "DEFAULT" for p in ("device", "ort_opt"))
    _warn_ignored(input_path, output, in_place, run, save, ort_set)
    parse_layout(layout)  # a typo is a typo, even when nothing runs
    if layout is not None and run is None:
        warn("--layout is ignored without --run (no input is made)")
    saving = save is not None and run is not None
    opened = open_model(input_path, trust_pickle=trust_pickle)
    check_writes(
        [*opened.files, run],
        [output, io.data_path(output), save if saving else None],
        in_place=[output, io.data_path(output)] if in_place else [],
        hint="use --in-place",
    )
    feeds = load_input(run, opened.proto, max_pixels, opened.source, layout) if run is not None else None
    result = expose(
        opened,
        layer or (),
        match=match or (),
        op_types=op_type or (),
        exclude=exclude or (),
        all=all_,
        feeds=feeds,
        inplace=True,  # read for this command alone: no copy of the weights
    )
    values: dict[str, np.ndarray] = {}
    if run is not None and feeds is not None:
        values = _run(result.model, run, feeds, device, ort_opt, result.exposed, str(input_path), layout)
    with io.staged() as staging:  # the model and the activations: both or neither
        io.save_model(result.model, output, external_data=opened.external_data or None, staging=staging)
        if saving:
            _save_npz(staging.path(save), result.exposed, values)
    _report(result, values, json_)
    err_console.print(
        f"wrote {output}: {len(result.added)} new output(s) for {len(result.exposed)} layer(s)",
        highlight=False,
    )


def _run(
    model: onnx.ModelProto,
    run: Path,
    feeds: dict[str, np.ndarray],
    device: str,
    ort_opt: str,
    exposed: dict[str, tuple[str, ...]],
    source: str,
    layout: str | None,
) -> dict[str, np.ndarray]:
    from onnxdream.runtime import make_session
    from onnxdream.sizes import input_failure

    session = make_session(model, device, ort_opt, source=source)
    tensors = list(dict.fromkeys(t for ts in exposed.values() for t in ts))
    try:
        values = session.run(feeds, tensors, quiet=True)
    except Exception as exc:  # ORT raises several unrelated types for bad feeds
        raise input_failure(model, feeds, source, exc, str(run), layout) from None
    err_console.print(f"ran {run} on {session.device} (ONNX Runtime, --ort-opt {ort_opt})", highlight=False)
    return values


def _save_npz(path: Path, exposed: dict[str, tuple[str, ...]], values: dict[str, np.ndarray]) -> None:
    arrays = {key: values[tensor] for key, tensor in npz_keys(exposed).items()}
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _report(result: ExposeResult, values: dict[str, np.ndarray], as_json: bool) -> None:
    rows = []
    for name, tensors in result.exposed.items():
        for tensor in tensors:
            declared = value_type(result.value_info(tensor))
            row: dict[str, Any] = {
                "layer": name,
                "tensor": tensor,
                "dtype": declared.dtype,
                "shape": None if declared.shape is None else list(declared.shape),
                "added": tensor in result.added,
            }
            if tensor in values and values[tensor].size and values[tensor].dtype.kind in "fiu":
                row["min"] = float(values[tensor].min())
                row["max"] = float(values[tensor].max())
            rows.append(row)
    if as_json:
        print_json(rows)
        return
    table = Table("layer", "output tensor", "dtype", "shape", *(("range",) if values else ()))
    for row in rows:
        dims = row["shape"]
        shape = "(?)" if dims is None else "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"
        extra = [f"[{row['min']:.4g}, {row['max']:.4g}]"] if "min" in row else ([""] if values else [])
        table.add_row(row["layer"], row["tensor"], row["dtype"], shape, *extra)
    out_console.print(table)
