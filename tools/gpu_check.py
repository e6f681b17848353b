"""Every CUDA path once, against the CPU: a table of time and max difference (one script, < 5 min).

    python tools/gpu_check.py                      # the built-in model on CUDA
    python tools/gpu_check.py --model m.onnx --layer block2 --size 32
    python tools/gpu_check.py --device cpu         # the same machinery on the CPU (what CI runs)

Without a CUDA GPU (torch's) it says so in one line and exits 0. Rows:

- ``ort session``: ONNX Runtime's provider on the device (the CUDA provider must really load);
- ``ort forward``: ONNX Runtime on the device vs on the CPU, the target layer's activation;
- ``mirror forward`` / ``mirror gradient``: the torch mirror on the device vs on the CPU
  (activation, and the gradient of its mean square w.r.t. the input);
- ``mirror compiled``: ``--compile``'s compiled gradient pass vs the eager one on the device;
- ``dream`` / ``visualize`` at fp32, fp16, bf16: a short run on the device, its forward checks
  against ONNX Runtime (float32) and the image against the same run on the CPU in float32;
- ``dream folder`` / ``dream atlas``: the batch paths through the CLI, outputs against the CPU's.

``ok`` is the row's own criterion: the 1e-4 contract for float32 forwards, the checks' verdict
for dream and visualize (reduced precision changes the image: its difference is reported only).
Exit status 1 when a row fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass
class Row:
    path: str
    precision: str
    seconds: float
    diff: float | None
    ok: bool
    note: str = ""


def _max_diff(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")


def _scale(reference) -> float:
    import numpy as np

    return max(1.0, float(np.abs(np.asarray(reference)).max()))


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    import torch

    begin = time.perf_counter()
    value = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return value, time.perf_counter() - begin


def run_checks(args: argparse.Namespace) -> list[Row]:
    """Every row of the table for ``args.device`` (``cuda``, or ``cpu`` to exercise the script)."""
    import numpy as np
    import torch

    from onnxdream.dream import DreamOptions, open_dreamer, parse_spec
    from onnxdream.dream.demo import demo_image
    from onnxdream.dream.visualize import run as visualize
    from onnxdream.errors import OnnxDreamError
    from onnxdream.mirror import Mirror
    from onnxdream.model import open_model
    from onnxdream.runtime import make_session
    from onnxdream.surgery.cut import cut_model

    device, layer, rows = args.device, args.layer, []
    model = open_model(args.model)
    tensor = model.index.resolve(layer).outputs[0]
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))

    cut = cut_model(model.proto, [tensor])
    cpu_session = make_session(cut, device="cpu", optimization="none")
    try:
        session, seconds = _timed(lambda: make_session(cut, device=device, optimization="none"))
    except OnnxDreamError as exc:  # the CUDA provider did not load: say so, check the rest
        rows.append(Row("ort session", "fp32", 0.0, None, False, f"failed: {exc}"))
    else:
        note = f"provider: {session.device}"
        rows.append(Row("ort session", "fp32", seconds, None, session.device == device, note))
        feed = {session.input_names[0]: x.numpy()}
        reference = cpu_session.run(feed)[tensor]
        found, seconds = _timed(lambda: session.run(feed)[tensor])
        diff = _max_diff(found, reference)
        rows.append(Row("ort forward", "fp32", seconds, diff, diff <= 1e-4 * _scale(reference)))

    def gradient(net: Callable, inputs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        inputs = inputs.clone().requires_grad_(True)
        act = net(inputs)
        (grad,) = torch.autograd.grad(act.float().square().mean(), inputs)
        return act.detach().float().cpu().numpy(), grad.cpu().numpy()

    cpu_mirror = Mirror(model).eval().requires_grad_(False)
    act_cpu, grad_cpu = gradient(lambda t: cpu_mirror(t, layers=[layer])[layer], x)
    mirror = Mirror(model).to(device).eval().requires_grad_(False)
    (act, grad), seconds = _timed(lambda: gradient(lambda t: mirror(t, layers=[layer])[layer], x.to(device)))
    diff = _max_diff(act, act_cpu)
    rows.append(Row("mirror forward", "fp32", seconds, diff, diff <= 1e-4 * _scale(act_cpu)))
    diff = _max_diff(grad, grad_cpu)
    rows.append(Row("mirror gradient", "fp32", seconds, diff, diff <= 1e-4 * _scale(grad_cpu)))

    if not args.no_compile:
        eager = open_dreamer(model, device)
        compiled = open_dreamer(model, device, compile=True)
        reference = gradient(lambda t: eager.net(t, [layer])[layer], x.to(device))[1]
        found, seconds = _timed(lambda: gradient(lambda t: compiled.net(t, [layer])[layer], x.to(device))[1])
        diff = _max_diff(found, reference)
        rows.append(
            Row("mirror compiled", "fp32", seconds, diff, diff <= 1e-4 * _scale(reference), "incl. compile")
        )

    picture = demo_image(args.size)
    specs = [parse_spec(layer)]
    dream_options = DreamOptions(octaves=2, steps=args.steps, lr=0.05, seed=1, on_mismatch="warn")
    base_dream = np.asarray(open_dreamer(model, "cpu").run(picture, specs, dream_options)[0], np.float32)
    visualize_options = {"size": args.size, "steps": args.steps, "seed": 1, "on_mismatch": "warn"}
    base_vis = np.asarray(visualize(open_dreamer(model, "cpu"), specs, **visualize_options)[0][0], np.float32)
    for precision in ("fp32", "fp16", "bf16"):
        try:
            dreamer = open_dreamer(model, device, precision=precision)
        except OnnxDreamError as exc:
            rows.append(Row("dream/visualize", precision, 0.0, None, device == "cpu", f"refused: {exc}"))
            continue
        try:
            (image, result), seconds = _timed(lambda d=dreamer: d.run(picture, specs, dream_options))
        except Exception as exc:  # a broken path is a row of the table, not the end of the check
            rows.append(Row("dream", precision, 0.0, None, False, f"failed: {type(exc).__name__}: {exc}"))
            continue
        diff = _max_diff(np.asarray(image, np.float32), base_dream)
        rows.append(Row("dream", precision, seconds, diff, result.checks.passed, _checks(result.checks)))
        (images, found), seconds = _timed(lambda d=dreamer: visualize(d, specs, **visualize_options))
        diff = _max_diff(np.asarray(images[0], np.float32), base_vis)
        rows.append(Row("visualize", precision, seconds, diff, found.checks.passed, _checks(found.checks)))
    rows += _batch_rows(args)
    return rows


def _checks(summary) -> str:
    return f"ORT checks {'passed' if summary.passed else 'FAILED'}, max |diff| {summary.max_abs:.2g}"


def _batch_rows(args: argparse.Namespace) -> list[Row]:
    """The folder and atlas paths through the CLI, on the device and on the CPU."""
    import numpy as np
    from PIL import Image
    from typer.testing import CliRunner

    from onnxdream.cli import app
    from onnxdream.dream.demo import demo_image
    from onnxdream.inputs.images import to_pil

    runner, rows = CliRunner(), []
    common = ["--octaves", "2", "--steps", str(args.steps), "--lr", "0.05", "-q", "--on-mismatch", "warn"]
    model = [] if args.model == "zoo:efficientnet-lite0" else ["--model", args.model]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for seed in range(2):
            to_pil(demo_image(args.size, seed=seed)).save(folder / f"{seed}.png")
        jobs = {
            "dream folder": lambda out: [str(folder), str(out), "--layer", args.layer],
            "dream atlas": lambda out: [
                str(folder / "0.png"), str(out) + ".png", "--atlas", "--match", args.layer,
            ],
        }  # fmt: skip
        for name, argv in jobs.items():
            outputs = {}
            seconds = 0.0
            for k, device in enumerate(("cpu", args.device)):
                out = Path(tmp) / f"{name.replace(' ', '_')}_{k}_{device}"
                begin = time.perf_counter()
                done = runner.invoke(app, ["dream", *argv(out), *model, *common, "--device", device])
                seconds = time.perf_counter() - begin
                if done.exit_code != 0:
                    rows.append(Row(name, "fp32", seconds, None, False, done.output.strip()[-200:]))
                    break
                files = sorted(Path(tmp).glob(f"{out.name}*/*.png")) + sorted(
                    Path(tmp).glob(f"{out.name}.png")
                )
                outputs[k] = [np.asarray(Image.open(f), np.float32) for f in files]
            else:
                pairs = list(zip(outputs[0], outputs[1], strict=True))
                diff = max(_max_diff(a, b) for a, b in pairs)
                rows.append(Row(name, "fp32", seconds, diff, bool(pairs), f"{len(pairs)} image(s)"))
    return rows


def _print(rows: list[Row], args: argparse.Namespace) -> None:
    print(
        f"{args.model} layer {args.layer}, {args.size}x{args.size}, {args.steps} steps; device {args.device} vs cpu"
    )
    print(f"{'path':18}{'precision':>10}{'seconds':>10}{'max |diff|':>12}  {'ok':4}note")
    for r in rows:
        diff = "-" if r.diff is None else f"{r.diff:.3g}"
        print(f"{r.path:18}{r.precision:>10}{r.seconds:10.2f}{diff:>12}  {'yes' if r.ok else 'NO':4}{r.note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--model", default="zoo:efficientnet-lite0")
    parser.add_argument("--layer", default="_blocks.10")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument(
        "--no-compile", action="store_true", help="skip the torch.compile row (minutes on a CPU)"
    )
    args = parser.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"no CUDA GPU: torch {torch.__version__} sees none, so there is no CUDA path to check")
        return 0
    rows = run_checks(args)
    _print(rows, args)
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
