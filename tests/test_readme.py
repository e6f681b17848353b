"""Every ``onnxdream`` command shown in the README runs, in order, and succeeds; then its Python blocks.

The files the examples name (a photo, zoo models, a fine-tuned export, a map file, a factory
module) are made here; everything else the commands write is used by the commands after them.
"""

from __future__ import annotations

import json
import re
import shlex
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.io import load_model, save_model
from onnxdream.zoo import light_zoo_model

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands() -> list[str]:
    """``onnxdream ...`` command lines from the README's bash blocks, continuations joined."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith("onnxdream "):
                    commands.append(part)
    return commands


def _prepare(folder: Path) -> None:
    y, x = np.mgrid[0:192, 0:256].astype(np.float32)
    rgb = np.stack([np.sin(x / 11) * 0.5 + 0.5, np.cos(y / 7) * 0.5 + 0.5, (x + y) / 448], axis=-1)
    Image.fromarray((rgb * 255).astype(np.uint8)).save(folder / "photo.jpg", quality=95)
    save_model(light_zoo_model("googlenet"), folder / "googlenet.onnx")
    save_model(light_zoo_model("shufflenet"), folder / "shufflenet.onnx")
    (folder / "names.json").write_text(json.dumps({"gpu_0/conv3_0": "stem"}))
    from tests.video_helpers import panning_frames, write_clip

    write_clip(folder / "clip.mp4", panning_frames(6, height=48, width=64))
    package = folder / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(
        textwrap.dedent(
            """
            import torch

            def build():
                torch.manual_seed(0)
                return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
            """
        )
    )
    _prepare_keras(folder)
    from tests import transfer_variants as variants

    model, _ = variants.build_model("sequential")
    save_model(variants.export(variants.fine_tune(model, steps=1), "dynamo"), folder / "finetuned.onnx")


def _prepare_fine_tuning(folder: Path) -> None:
    """The fine-tuning example's files: ``ftnet.py`` and ``fine_tuned_model.pth`` as the README's
    Python blocks make them, and ``ft_stripped.onnx``: the fine-tuned network exported by the
    legacy exporter, every name and all metadata removed."""
    import io

    import onnx
    import torch

    from onnxdream.torch_export import quiet_exporter
    from tests import transfer_variants

    blocks = readme_python()
    architecture = next(b for b in blocks if b.startswith("# ftnet.py"))
    (folder / "ftnet.py").write_text(architecture)
    exec(compile(next(b for b in blocks if "fine_tuned_model.pth" in b), "README.md", "exec"), {})
    import ftnet

    model = ftnet.build().eval()
    model.load_state_dict(torch.load(folder / "fine_tuned_model.pth"))
    buffer = io.BytesIO()
    with quiet_exporter():
        torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), buffer, dynamo=False)
    stripped = transfer_variants.strip(onnx.load_model_from_string(buffer.getvalue()))
    save_model(stripped, folder / "ft_stripped.onnx")


def _prepare_keras(folder: Path) -> None:
    """The Keras section's files: a small pretrained model and its fine-tuning wrap as .h5, the
    wrap's own Keras export, and the tf2onnx exports (committed fixtures)."""
    import shutil

    from tests.keras_helpers import INPUT, save_fine_tuning_example

    save_fine_tuning_example(folder, "keras_export.onnx", np.zeros((1, *INPUT), np.float32))
    fixtures = README.parent / "fixtures" / "keras"
    shutil.copy(fixtures / "fine_tuned_tf2onnx.onnx", folder / "fine_tuned_tf.onnx")
    shutil.copy(fixtures / "pretrained_tf2onnx.onnx", folder / "pretrained_tf.onnx")


@pytest.mark.slow
def test_readme_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _prepare(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    _prepare_fine_tuning(tmp_path)
    runner = CliRunner()
    commands = readme_commands()
    assert any("dream --demo out.png" in c for c in commands)  # the README's main command
    for command in commands:
        args = shlex.split(command, comments=True)[1:]
        target = None
        if ">" in args:
            args, target = args[: args.index(">")], args[args.index(">") + 1]
        result = runner.invoke(app, [*args, "--device", "cpu"] if _takes_device(args) else args)
        assert result.exit_code == 0, f"{command}\n{result.output}"
        if target:
            Path(target).write_text(result.stdout)
    assert (tmp_path / "out.png").stat().st_size > 0
    assert json.loads((tmp_path / "layers.json").read_text())[0]["name"] == "_conv_stem"

    # rename --reference SPEC --weights gave the stripped (legacy-exported) fine-tuned network the
    # names `export --weights` gives it: every Conv and Gemm, fine_tune_block's included.
    def weighted(path: str) -> list[str]:
        return [n.name for n in load_model(tmp_path / path).graph.node if n.op_type in ("Conv", "Gemm")]

    assert weighted("ft_named.onnx") == weighted("ft.onnx")
    assert weighted("ft.onnx")[-2:] == ["fine_tune_block.fc1", "fine_tune_block.fc2"]
    # The Python examples run too, in the same folder, on the files the commands made.
    blocks = readme_python()
    assert any("open_model" in block for block in blocks)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    assert (tmp_path / "again.onnx").is_file()


def readme_python() -> list[str]:
    """The README's Python blocks."""
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _takes_device(args: list[str]) -> bool:
    """CliRunner captures output in process: pin the device so no CUDA probe runs there."""
    return args[0] in ("check", "dream", "expose-layers", "visualize") and "--device" not in args
