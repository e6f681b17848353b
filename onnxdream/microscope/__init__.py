"""``onnxdream microscope``: a static, offline atlas of what every named layer of a model responds to.

Per layer: op, output shape, name origin, activation statistics over a folder of images and a
Deep Dream of a reference image; per channel: its feature visualisation, the dataset images
that excite it most (cropped to its receptive field) and the spec to paste into dream or
visualize. The work is split into cached, resumable items (see :mod:`.build`).
"""

from __future__ import annotations

from onnxdream.microscope.build import MicroscopeOptions, MicroscopeResult, build_site

__all__ = ["MicroscopeOptions", "MicroscopeResult", "build_site"]
