"""Make the README's microscope screenshot: a site of the built-in model over a generated image
folder, one layer page opened in headless chromium (offline), saved to tools/gallery/.

    python tools/make_microscope_screenshot.py [--layer _blocks.5._project_conv] [--channels 12]

Needs the ``microscope`` and ``browser`` extras and /usr/bin/chromium (``.ci/run`` installs them).
The site is built in a temporary folder; only the screenshot is kept (JPEG, a few tens of KB).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def _image_folder(folder: Path, count: int) -> Path:
    """Seeded clouds and stripes: no image file needs to come from anywhere."""
    import numpy as np

    from onnxdream.dream.demo import demo_image

    folder.mkdir()
    for i in range(count):
        clouds = demo_image(224, seed=i)
        yy, xx = np.mgrid[0:224, 0:224] / 224
        stripes = 0.5 + 0.4 * np.sin((8 + 4 * i) * (xx * np.cos(i) + yy * np.sin(i)))[..., None]
        pixels = clouds * (0.5 + 0.5 * stripes) if i % 2 else clouds
        Image.fromarray((np.clip(pixels, 0, 1) * 255).astype("uint8")).save(folder / f"generated{i}.png")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="_blocks.5._project_conv")
    parser.add_argument("--channels", type=int, default=12)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "tools" / "gallery" / "microscope.jpg")
    args = parser.parse_args()

    import sys

    sys.path.insert(0, str(ROOT))
    from onnxdream.microscope import MicroscopeOptions, build_site
    from tests.browser_helpers import offline_page

    with tempfile.TemporaryDirectory(prefix="microscope-shot-") as tmp:
        images = _image_folder(Path(tmp) / "images", args.images)
        options = MicroscopeOptions(
            channels=args.channels,
            size=96,
            steps=args.steps,
            top_k=4,
            dream_size=160,
            dream_octaves=2,
            device="cpu",
        )
        result = build_site(
            "zoo:efficientnet-lite0", Path(tmp) / "site", images=images, layers=[args.layer], options=options
        )
        print(result.summary())
        page_file = next((Path(tmp) / "site" / "layers").glob("*.html"))
        shot = Path(tmp) / "shot.png"
        with offline_page(width=960, height=900) as (page, watch):
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            page.screenshot(path=str(shot), full_page=True)
        if watch.problems():
            raise SystemExit(f"the page had problems: {watch.problems()}")
        Image.open(shot).convert("RGB").save(args.out, "JPEG", quality=82, optimize=True)
    out = args.out.resolve()
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"{shown}: {out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
