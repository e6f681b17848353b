"""The seed scenario of issue 7, end to end: names back after transfer learning.

1. EfficientNet-Lite0 with its ImageNet weights is wrapped for transfer learning
   (``FineTuned``: ``backbone`` + a new ``fine_tune_conv1`` and a 10-class classifier) and
   fine-tuned for a few steps on random data (CPU).
2. It is exported with the default torch exporter: ``onnxdream layers`` shows ``node_Conv_877``.
3. ``onnxdream rename --reference zoo:efficientnet-lite0`` gives back the pretrained names; the new
   head keeps names of its own; ONNX Runtime outputs are bit-identical before and after.
4. ``onnxdream dream --demo`` runs on the renamed fine-tuned model with a pretrained layer name
   (``_blocks.10``; when the ``dream`` command is installed), writing ``dream.png``.

    python -m tools.transfer_demo [--out out/transfer] [--layer _blocks.10]   # from the repository root
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from rich.console import Console
from rich.table import Table

from onnxdream.io import save_model
from onnxdream.runtime import make_session
from onnxdream.zoo import EFFICIENTNET_PREPROCESS
from tests import transfer_variants as tv

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class DemoResult:
    """What the demo produced.

    Attributes:
        finetuned: the fine-tuned model as the default exporter wrote it.
        renamed: the same model after ``rename --reference``.
        layers_before: node names ``onnxdream layers`` listed before renaming.
        report: the rename report (per node: old, new, origin, score, why).
        accuracy: the renamed names against the ground truth (see ``transfer_variants``).
        max_output_diff: largest difference between the two models' outputs (0.0 expected).
        dream: the dream image, or None when ``dream`` is not installed or not asked for.
    """

    finetuned: Path
    renamed: Path
    layers_before: list[str]
    report: dict
    accuracy: tv.Accuracy
    max_output_diff: float
    dream: Path | None


def onnxdream_cli(*args: str | Path) -> subprocess.CompletedProcess:
    """Run ``python -m onnxdream ARGS`` from this checkout; raise with its stderr on failure."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "onnxdream", *map(str, args)], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"onnxdream {' '.join(map(str, args))} failed ({done.returncode}): {done.stderr}")
    return done


def dream_available() -> bool:
    """Whether this installation has the ``dream`` command."""
    from onnxdream.cli import app

    return any(c.name == "dream" for c in app.registered_commands)


def run(
    out: Path,
    *,
    steps: int = 3,
    size: int = 64,
    reference: str = "zoo:efficientnet-lite0",
    layer: str = "_blocks.10",
    dream: bool = True,
) -> DemoResult:
    """Steps 1-4 of the scenario; files go to ``out``.

    Args:
        out: output folder (created).
        steps: fine-tuning steps (image side ``size``).
        reference: what ``rename --reference`` gets: an export SPEC or a named ``.onnx`` file.
        layer: the pretrained layer name to dream on.
        dream: run step 4 when the ``dream`` command is installed.
    """
    out.mkdir(parents=True, exist_ok=True)
    model, layout = tv.build_model("finetuned")
    tv.fine_tune(model, steps=steps, size=size)
    finetuned, renamed, report_path = out / "finetuned.onnx", out / "renamed.onnx", out / "rename.json"
    exported = tv.export(model, "dynamo")
    save_model(exported, finetuned)
    layers_before = [row["name"] for row in json.loads(onnxdream_cli("layers", finetuned, "--json").stdout)]

    onnxdream_cli("rename", finetuned, renamed, "--reference", reference, "--report", report_path)
    report = json.loads(report_path.read_text())
    after = onnx.load(str(renamed))

    truth = tv.node_keys(exported, layout, tv.backbone_modules())
    _, reference_names = tv.reference_model()
    matches = [
        _Named(i, node.name)
        for i, node in enumerate(after.graph.node)
        if report["nodes"][i]["origin"] == "reference"
    ]
    accuracy = tv.accuracy(tv.Case(exported, truth), matches, reference_names)

    x = np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype(np.float32)
    outputs = [
        make_session(str(p), device="cpu").run({exported.graph.input[0].name: x})
        for p in (finetuned, renamed)
    ]
    diff = max(float(np.max(np.abs(outputs[0][k] - outputs[1][k]))) for k in outputs[0])

    image = None
    if dream and dream_available():
        image = out / "dream.png"
        onnxdream_cli(
            "dream", image, "--demo", "--model", renamed, "--layer", layer,
            "--mean", ",".join(map(str, EFFICIENTNET_PREPROCESS["mean"])),
            "--std", ",".join(map(str, EFFICIENTNET_PREPROCESS["std"])),
            "--octaves", "3", "--steps", "8", "--quiet",
        )  # fmt: skip
    return DemoResult(finetuned, renamed, layers_before, report, accuracy, diff, image)


@dataclass(frozen=True)
class _Named:
    node: int
    name: str


def show(result: DemoResult, console: Console, layer: str = "_blocks.10") -> None:
    """Print the before/after story."""
    console.rule("2. exported with the default torch exporter")
    console.print(
        "onnxdream layers:", ", ".join(result.layers_before[:6]), "...", ", ".join(result.layers_before[-4:])
    )
    console.rule("3. onnxdream rename --reference zoo:efficientnet-lite0")
    table = Table("before", "after", "origin", "score", "why")
    nodes = result.report["nodes"]
    for entry in nodes[:5] + nodes[-9:]:
        score = f"{entry['score']:.3f}" if "score" in entry else ""
        table.add_row(entry["old"], entry["new"], entry["origin"], score, entry.get("why", ""))
    console.print(table)
    counts = result.report["counts"]
    console.print("names by origin:", ", ".join(f"{k} {v}" for k, v in counts.items()))
    console.print("against the ground truth:", result.accuracy.row())
    console.print(f"outputs before vs after: max |diff| = {result.max_output_diff}")
    console.rule("4. onnxdream dream")
    if result.dream is not None:
        console.print(f"dream on the pretrained layer name {layer!r} written to {result.dream}")
    else:
        console.print("the dream command is not installed here; step 4 skipped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "transfer")
    parser.add_argument("--steps", type=int, default=3, help="fine-tuning steps")
    parser.add_argument("--reference", default="zoo:efficientnet-lite0")
    parser.add_argument("--layer", default="_blocks.10", help="pretrained layer to dream on")
    args = parser.parse_args()
    console = Console()
    console.rule("1. fine-tuning EfficientNet-Lite0 with a new head (CPU, random data)")
    result = run(args.out, steps=args.steps, reference=args.reference, layer=args.layer)
    show(result, console, args.layer)


if __name__ == "__main__":
    main()
