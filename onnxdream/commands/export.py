"""``onnxdream export``: torch -> ONNX with module names on the nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from onnxdream.commands.common import err_console, guarded, print_json
from onnxdream.commands.options import (
    JsonOption,
    MeanOption,
    StdOption,
    TrustPickleOption,
    WeightsOption,
    WeightsPrefixOption,
    float_list,
)
from onnxdream.errors import OnnxDreamError


def _shape(text: str) -> list[int]:
    try:
        dims = [int(v) for v in text.split(",")]
    except ValueError:
        dims = []
    if not dims or any(d <= 0 for d in dims):
        raise OnnxDreamError(f"--input-shape must be positive integers like 1,3,224,224, got {text!r}")
    return dims


@guarded
def export_command(
    spec: Annotated[
        str, typer.Argument(help="zoo:efficientnet-lite0, a torch.save/TorchScript file, or pkg.mod:factory.")
    ],
    out: Annotated[Path, typer.Argument(help="Output .onnx file.")],
    input_shape: Annotated[str, typer.Option(help="Example input shape.")] = "1,3,224,224",
    dynamic_batch: Annotated[bool, typer.Option(help="Make the batch dimension dynamic.")] = False,
    opset: Annotated[int | None, typer.Option(help="ONNX opset (exporter default if omitted).")] = None,
    legacy: Annotated[bool, typer.Option(help="Use the TorchScript exporter (dynamo=False).")] = False,
    mean: MeanOption = None,
    std: StdOption = None,
    json_output: JsonOption = False,
    trust_pickle: TrustPickleOption = False,
    weights: WeightsOption = None,
    weights_prefix: WeightsPrefixOption = None,
) -> None:
    """Export a torch model to ONNX with node names = torch module paths.

    The result is verified: ONNX Runtime and torch run the same seeded input and the export
    fails (exit 1) when they differ by more than 1e-4 relative to the output scale.

    Examples:

      onnxdream export zoo:efficientnet-lite0 effnet.onnx

      onnxdream export model.pt model.onnx --input-shape 1,3,256,256 --legacy

      onnxdream export mypkg.models:build net.onnx --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5

      onnxdream export full_model.pt model.onnx --trust-pickle

      onnxdream export mypkg.nets:build ft.onnx --weights fine_tuned_model.pth
    """
    from onnxdream.io import check_model, data_path, save_model
    from onnxdream.paths import check_writes
    from onnxdream.torch_export import export_model, require_match

    spec_file = Path(spec) if Path(spec).is_file() else None
    check_writes([spec_file, Path(weights) if weights else None], [out, data_path(out)])
    with err_console.status(f"exporting {spec} and checking it with ONNX Runtime"):
        result = export_model(
            spec,
            legacy=legacy,
            opset=opset,
            input_shape=_shape(input_shape),
            dynamic_batch=dynamic_batch,
            mean=float_list(mean, "--mean"),
            std=float_list(std, "--std"),
            trust_pickle=trust_pickle,
            weights=weights,
            weights_prefix=weights_prefix,
        )
    check_model(result.model)
    summary = {
        "model": str(out),
        "nodes": len(result.model.graph.node),
        "max_abs_diff": result.max_abs_diff,
        "limit": result.limit,
        "ok": result.ok,
        "device": result.device,
        "weights": result.weights.to_json() if result.weights else None,
    }
    require_match(result, spec)
    save_model(result.model, out)
    if json_output:
        print_json(summary)
    else:
        err_console.print(
            f"wrote {out}: {summary['nodes']} nodes; ONNX Runtime ({result.device}) vs torch "
            f"max |diff| {result.max_abs_diff:.2e} (limit {summary['limit']:.2e})"
            + (f"; weights {result.weights.summary()}" if result.weights else "")
        )
