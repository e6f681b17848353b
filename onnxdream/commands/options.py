"""Options shared by the commands: one spelling, one help text and one parser per concept.

Values are checked by the library (one-line errors naming the flag, exit 2), not by typer's
choices (a usage panel): so ``--device`` and ``--ort-opt`` are plain strings here.
"""

from __future__ import annotations

from typing import Annotated

import typer

from onnxdream.errors import OnnxDreamError

MODEL_HELP = "ONNX file, zoo:NAME, or a torch SPEC (a torch file or package.module:factory, exported first)."
ModelArgument = Annotated[str, typer.Argument(metavar="MODEL", help=MODEL_HELP, show_default=False)]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        metavar="MODEL",
        help=MODEL_HELP.removesuffix(".") + " (default: zoo:efficientnet-lite0).",
    ),
]
TrustPickleOption = Annotated[
    bool,
    typer.Option(
        "--trust-pickle",
        help="Allow a torch.save(model) file: loading it runs code from the file "
        "(without it only TorchScript, weights-only files and pkg.mod:factory load).",
    ),
]
MatchOption = Annotated[
    list[str] | None,
    typer.Option(
        "--match",
        metavar="GLOB",
        help="Layers whose names match this shell glob, e.g. '_blocks.*' (repeatable).",
    ),
]
OpTypeOption = Annotated[
    list[str] | None,
    typer.Option("--op-type", metavar="OP", help="Layers of this op type, e.g. Conv (repeatable)."),
]
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        metavar="auto|cpu|cuda",
        help="Where the model runs: auto (CUDA when it really loads, else the CPU), cpu or cuda.",
    ),
]
OrtOptOption = Annotated[
    str,
    typer.Option(
        "--ort-opt",
        metavar="all|extended|basic|none",
        help="ONNX Runtime graph optimisation level; none computes every intermediate as in the graph.",
    ),
]
CompareOrtOptOption = Annotated[
    str,
    typer.Option(
        "--ort-opt",
        metavar="none|all",
        help="ONNX Runtime graph optimisation level. The default is none, not all as elsewhere: "
        "fused nodes would hide the intermediates compared layer by layer.",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (messages go to stderr).")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
MaxPixelsOption = Annotated[
    int,
    typer.Option(
        "--max-pixels",
        min=0,
        metavar="N",
        help="Refuse input images of more pixels than this (decompression bombs); 0 lifts the limit.",
    ),
]
MeanOption = Annotated[
    str | None,
    typer.Option("--mean", metavar="FLOATS", help="Mean per channel, e.g. 0.485,0.456,0.406."),
]
StdOption = Annotated[
    str | None,
    typer.Option("--std", metavar="FLOATS", help="Standard deviation per channel, e.g. 0.229,0.224,0.225."),
]
RangeOption = Annotated[
    str | None,
    typer.Option("--range", metavar="LOW,HIGH", help="Override the model's input range, e.g. 0,255."),
]
ChannelOrderOption = Annotated[
    str | None,
    typer.Option("--channel-order", metavar="RGB|BGR", help="Override the model's channel order."),
]
LayoutOption = Annotated[
    str | None,
    typer.Option(
        "--layout",
        metavar="nchw|nhwc",
        help="The image input's layout (default: found from the model: an input transposed to NCHW, "
        "as tf2onnx and Keras exports do, or the layout recorded in its metadata; else nchw).",
    ),
]


def float_list(text: str | None, flag: str) -> list[float] | None:
    """``"0.5, 0.5,0.5"`` -> ``[0.5, 0.5, 0.5]`` (spaces and empty items ignored); None stays None.

    Raises:
        OnnxDreamError: an item is not a number (one line naming ``flag``, exit 2).
    """
    if text is None:
        return None
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise OnnxDreamError(f"{flag} takes comma-separated numbers, got {text!r}") from None
