"""Make the README's pictures in tools/gallery/: a dream before/after the quality options, with the
same input and the same time budget, and a channel atlas from ``onnxdream visualize``.

    python tools/make_gallery.py [--size 320] [--steps 10] [--out tools/gallery]

"Before" is Deep Dream as onnxdream did it first (pixels, normalised ascent, jitter only); "after"
is today's default (fft + decorrelated colour + Adam + random zoom/rotation). When "after" takes
longer, it runs again with fewer steps per octave so that it spends no more time than "before".
Prints the time each took and the bytes written (the README keeps the gallery under 1.5 MB).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BEFORE = {"param": "pixels", "decorrelate": False, "optimizer": "ascent", "scale": 0.0, "rotate": 0.0}


def _save(image: Image.Image, path: Path) -> None:
    image.convert("RGB").save(path, format="JPEG", quality=85, optimize=True)
    print(
        f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size // 1024} KB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=320, help="dream image side")
    parser.add_argument("--layer", default="_blocks.10")
    parser.add_argument("--octaves", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="steps per octave for 'before'")
    parser.add_argument("--atlas-layer", default="_blocks.10")
    parser.add_argument("--atlas-channels", default="0-7")
    parser.add_argument("--atlas-size", type=int, default=128)
    parser.add_argument("--atlas-steps", type=int, default=128)
    parser.add_argument("--out", type=Path, default=ROOT / "tools" / "gallery")
    args = parser.parse_args()

    from onnxdream.dream import DreamOptions, open_dreamer, parse_spec
    from onnxdream.dream.atlas import make_grid
    from onnxdream.dream.demo import demo_image
    from onnxdream.dream.visualize import run as visualize
    from onnxdream.inputs.images import to_pil

    args.out.mkdir(parents=True, exist_ok=True)
    dreamer = open_dreamer(None, "cpu")
    image = demo_image(args.size)
    specs = [parse_spec(args.layer)]
    common = {"octaves": args.octaves, "check": False, "seed": 0}
    before, done = dreamer.run(image, specs, DreamOptions(steps=args.steps, **BEFORE, **common))
    after, found = dreamer.run(image, specs, DreamOptions(steps=args.steps, **common))
    if found.seconds > done.seconds:
        steps = max(1, math.floor(args.steps * done.seconds / found.seconds))
        after, found = dreamer.run(image, specs, DreamOptions(steps=steps, **common))
    print(f"before: {done.summary()}")
    print(f"after:  {found.summary()}")
    _save(to_pil(image), args.out / "dream_input.jpg")
    _save(before, args.out / "dream_before.jpg")
    _save(after, args.out / "dream_after.jpg")

    cells, result = visualize(
        dreamer,
        args.atlas_layer,
        channels=args.atlas_channels,
        size=args.atlas_size,
        steps=args.atlas_steps,
        check=False,
    )
    print(f"atlas:  {result.summary()}")
    _save(make_grid(cells, result.targets, columns=4), args.out / "visualize_channels.jpg")
    total = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"gallery: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
