"""Write the small models and images the tests use into ``fixtures/`` (regenerate, never edit).

    python tools/make_fixtures.py

Everything is seeded and exported with the TorchScript exporter, so reruns give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from onnxdream.io import save_model
from onnxdream.torch_export import name_nodes

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class TinyCNN(torch.nn.Module):
    """Two conv blocks, a residual add and a classifier: every layer kind dream and rename touch."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())
        self.block = torch.nn.Sequential(
            torch.nn.Conv2d(8, 8, 3, padding=1, groups=2), torch.nn.BatchNorm2d(8), torch.nn.ReLU()
        )
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        h = h + self.block(h)
        return self.fc(self.pool(h).flatten(1))


def tiny_cnn() -> torch.nn.Module:
    """The seeded tiny CNN in eval mode (BatchNorm statistics made non-trivial)."""
    torch.manual_seed(0)
    model = TinyCNN()
    batchnorm = model.block[1]
    batchnorm.running_mean.uniform_(-0.5, 0.5)
    batchnorm.running_var.uniform_(0.5, 1.5)
    return model.eval()


def export_tiny_cnn(path: Path) -> None:
    model = tiny_cnn()
    example = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.onnx.export(
        model,
        (example,),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}},
    )
    import onnx

    onnx_model = onnx.load(str(path))
    name_nodes(onnx_model, {name for name, _ in model.named_modules()})
    save_model(onnx_model, path)


def pattern_image(path: Path, size: tuple[int, int] = (64, 48)) -> None:
    """A smooth colour pattern (no photos from outside)."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([np.sin(x / 7.0) * 0.5 + 0.5, np.cos(y / 5.0) * 0.5 + 0.5, ((x + y) % 16) / 15.0], axis=-1)
    Image.fromarray((rgb * 255).astype(np.uint8), "RGB").save(path)


def make_all(folder: Path = FIXTURES) -> list[Path]:
    """Write every fixture into ``folder``; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    export_tiny_cnn(folder / "tiny_cnn.onnx")
    pattern_image(folder / "pattern.png")
    return [folder / "tiny_cnn.onnx", folder / "pattern.png"]


def main() -> None:
    for path in make_all():
        print(f"{path.name}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
