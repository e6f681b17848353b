"""Image parameterisations: what the optimiser changes, and how it becomes RGB pixels.

- ``pixels``: the latent *is* the image (what Deep Dream has always done);
- ``fft``: the latent is the image's 2-D real spectrum, each frequency scaled by ``1/f`` when
  decoded, so equal steps on every coefficient change large shapes as much as fine detail (natural
  images have a ``1/f`` amplitude spectrum; plain pixel gradients are dominated by high frequencies);
- ``decorrelate``: the latent's three channels are decorrelated colour components, mixed into RGB
  by the square root of ImageNet's colour covariance, so a step changes luminance and colour in the
  proportions natural images have instead of producing saturated RGB speckle.

Pixels are kept in [0, 1] either by clipping after every step (``clip``: any image, such as a
photo to dream on, is represented exactly) or by a sigmoid (``sigmoid``: for images grown from
noise, where gradients must never vanish at the range's edges).
"""

from __future__ import annotations

import torch

from onnxdream.errors import OnnxDreamError

PARAMS = ("pixels", "fft")
SQUASHES = ("clip", "sigmoid")

COLOR_SQRT_COVARIANCE = (
    (0.26, 0.09, 0.02),
    (0.27, 0.00, -0.05),
    (0.27, -0.09, 0.03),
)
"""Square root of the colour covariance of ImageNet pixels (rows: R, G, B; columns: components),
the values lucid publishes; scaled below so its largest column has unit norm."""

_LOGIT_EPS = 1e-3


def color_matrix(like: torch.Tensor) -> torch.Tensor:
    """The decorrelated -> RGB mixing matrix (3x3), largest column norm 1."""
    matrix = torch.tensor(COLOR_SQRT_COVARIANCE, dtype=torch.float64)
    matrix = matrix / matrix.norm(dim=0).max()
    return matrix.to(dtype=like.dtype, device=like.device)


def spectrum_scale(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """``1/f`` per coefficient of an ``rfft2`` of an HxW image, RMS 1 (``f`` floored at one cycle)."""
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)[None, :]
    freq = (fy.square() + fx.square()).sqrt().clamp_min(1.0 / max(height, width))
    scale = 1.0 / freq
    scale = scale / scale.square().mean().sqrt()
    return scale.to(dtype=like.dtype, device=like.device)


def check_param(kind: str, squash: str = "clip") -> None:
    """Raise for an unknown parameterisation or squash.

    Raises:
        OnnxDreamError: naming the valid choices.
    """
    if kind not in PARAMS:
        raise OnnxDreamError(f"unknown parameterisation {kind!r}; choose one of {', '.join(PARAMS)}")
    if squash not in SQUASHES:
        raise OnnxDreamError(f"unknown squash {squash!r}; choose one of {', '.join(SQUASHES)}")


class ImageParam:
    """An NCHW RGB image in [0, 1] held as an optimisable latent tensor (``self.latent``)."""

    def __init__(
        self, latent: torch.Tensor, size: tuple[int, int], kind: str, decorrelate: bool, squash: str
    ) -> None:
        check_param(kind, squash)
        self.kind, self.decorrelate, self.squash = kind, decorrelate, squash
        self.size = size
        self.latent = latent.detach().clone().requires_grad_(True)
        self._scale = spectrum_scale(*size, latent) if kind == "fft" else None
        self._color = color_matrix(latent) if decorrelate else None

    @property
    def identity(self) -> bool:
        """Whether the latent is the image itself (then steps need no rescaling)."""
        return self.kind == "pixels" and not self.decorrelate and self.squash == "clip"

    @classmethod
    def from_pixels(
        cls, pixels: torch.Tensor, kind: str = "pixels", decorrelate: bool = False, squash: str = "clip"
    ) -> ImageParam:
        """The latent that decodes to ``pixels`` (NCHW in [0, 1]; exact up to float rounding)."""
        check_param(kind, squash)
        size = (int(pixels.shape[-2]), int(pixels.shape[-1]))
        x = pixels.detach()
        if squash == "sigmoid":
            x = torch.logit(x.clamp(_LOGIT_EPS, 1.0 - _LOGIT_EPS))
        if decorrelate:
            x = torch.einsum("rc,nchw->nrhw", torch.linalg.inv(color_matrix(x)), x)
        if kind == "fft":
            x = torch.view_as_real(torch.fft.rfft2(x, norm="ortho") / spectrum_scale(*size, x))
        return cls(x, size, kind, decorrelate, squash)

    @classmethod
    def noise(
        cls,
        batch: int,
        size: tuple[int, int],
        generator: torch.Generator,
        kind: str = "fft",
        decorrelate: bool = True,
        squash: str = "sigmoid",
        std: float = 0.01,
        device: torch.device | None = None,
    ) -> ImageParam:
        """A near-grey image with a little seeded noise in its latent (a start for visualisation)."""
        check_param(kind, squash)
        h, w = size
        shape = (batch, 3, h, w // 2 + 1, 2) if kind == "fft" else (batch, 3, h, w)
        latent = torch.randn(shape, generator=generator, dtype=torch.float32) * std
        if squash == "clip":
            base = ImageParam.from_pixels(torch.full((batch, 3, h, w), 0.5), kind, decorrelate, squash)
            latent = latent + base.latent.detach()
        return cls(latent.to(device or torch.device("cpu")), size, kind, decorrelate, squash)

    def linear(self, latent: torch.Tensor) -> torch.Tensor:
        """The linear part of decoding (spectrum and colour), before the squash."""
        x = latent
        if self._scale is not None:
            x = torch.fft.irfft2(torch.view_as_complex(x) * self._scale, s=self.size, norm="ortho")
        if self._color is not None:
            x = torch.einsum("rc,nchw->nrhw", self._color, x)
        return x

    def pixels(self) -> torch.Tensor:
        """The image (differentiable w.r.t. ``self.latent``)."""
        if self.identity:
            return self.latent
        x = self.linear(self.latent)
        return torch.sigmoid(x) if self.squash == "sigmoid" else x

    @torch.no_grad()
    def project(self) -> None:
        """Bring the image back into [0, 1] after a step (clip mode; a sigmoid needs nothing)."""
        if self.squash == "sigmoid":
            return
        if self.identity:
            self.latent.clamp_(0.0, 1.0)
            return
        x = self.linear(self.latent)
        if bool((x < 0).any() or (x > 1).any()):
            fresh = ImageParam.from_pixels(x.clamp(0.0, 1.0), self.kind, self.decorrelate, self.squash)
            self.latent.copy_(fresh.latent)

    @torch.no_grad()
    def image(self) -> torch.Tensor:
        """The current image, detached and clipped to [0, 1]."""
        return self.pixels().detach().clamp(0.0, 1.0)


def pixel_change(param: ImageParam, step: torch.Tensor) -> float:
    """Mean absolute pixel change a latent step causes (linearised at the squash)."""
    with torch.no_grad():
        return float(param.linear(step).abs().mean())
