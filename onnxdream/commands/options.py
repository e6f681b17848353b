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
WEIGHTS_HELP = (
    "Weights for the torch SPEC's architecture: a state dict (.pth/.pt/.bin), a checkpoint or "
    "Lightning .ckpt (its state_dict), or .safetensors; read without running code."
)
WeightsOption = Annotated[str | None, typer.Option("--weights", metavar="FILE", help=WEIGHTS_HELP)]
ReferenceWeightsOption = Annotated[
    str | None,
    typer.Option(
        "--weights", metavar="FILE", help=WEIGHTS_HELP.replace("the torch SPEC", "the --reference SPEC")
    ),
]
WeightsPrefixOption = Annotated[
    str | None,
    typer.Option(
        "--weights-prefix",
        metavar="PREFIX",
        help="Strip this prefix from the weights' keys (default: guessed, e.g. module., model., "
        "_orig_mod.); an empty PREFIX strips nothing.",
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

PrecisionOption = Annotated[
    str,
    typer.Option(
        "--precision",
        metavar="fp32|fp16|bf16",
        help="Precision of the torch mirror (autocast; ONNX Runtime checks stay fp32): "
        "fp16 needs CUDA, bf16 also runs on the CPU (slowly without bf16 instructions).",
    ),
]
CompileOption = Annotated[
    bool,
    typer.Option(
        "--compile/--no-compile",
        help="torch.compile the mirror's graph up to the target layers: minutes of compiling "
        "(cached on disk) that pay off only on long jobs; off by default (slower on the CPU).",
    ),
]
RayOption = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Run the items on the Ray cluster at ADDRESS (auto, host:port or ray://host:port); "
        "workers need onnxdream installed, this process writes every output.",
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers", metavar="N", help="With --ray: N workers, one model each (default: one per CPU)."
    ),
]
GpusPerWorkerOption = Annotated[
    float | None,
    typer.Option(
        "--gpus-per-worker",
        metavar="G",
        help="With --ray: GPUs per worker (default: 1 where the cluster has GPUs and --device is not cpu).",
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
