"""Fourier transforms and filter banks: DFT, STFT (complex values as a trailing [real, imaginary] axis), MelWeightMatrix."""

from __future__ import annotations

import math

import torch

from onnxdream.mirror.ops._common import norm_axis
from onnxdream.mirror.registry import Converted, NodeView, converter, torch_dtype


def _complex(x: torch.Tensor) -> torch.Tensor:
    """[..., 1] real or [..., 2] (real, imaginary) -> a complex128 tensor without that axis."""
    x = x.to(torch.float64)
    if x.shape[-1] == 1:
        return torch.complex(x[..., 0], torch.zeros_like(x[..., 0]))
    return torch.complex(x[..., 0], x[..., 1])


def _dft(x: torch.Tensor, length: int | None, axis: int, inverse: bool, onesided: bool) -> torch.Tensor:
    a = norm_axis(axis, x.dim())
    if length is None:
        length = 2 * (x.shape[a] - 1) if inverse and onesided else x.shape[a]
    z = _complex(x)
    if inverse and onesided:
        return torch.fft.irfft(z, n=length, dim=a).unsqueeze(-1).to(x.dtype)
    y = torch.fft.ifft(z, n=length, dim=a) if inverse else torch.fft.fft(z, n=length, dim=a)
    if onesided and not inverse:
        y = y.narrow(a, 0, length // 2 + 1)
    return torch.stack([y.real, y.imag], dim=-1).to(x.dtype)


def _length(t: torch.Tensor | None) -> int | None:
    return None if t is None or t.numel() == 0 else int(t.reshape(-1)[0])


@converter("DFT", 17, shape_inputs=(1,))
def dft_17(node: NodeView) -> Converted:
    axis, inverse, onesided = (
        node.attr("axis", 1),
        bool(node.attr("inverse", 0)),
        bool(node.attr("onesided", 0)),
    )
    return node.call(lambda x, n=None: _dft(x, _length(n), axis, inverse, onesided), 0, 1)


@converter("DFT", 20, shape_inputs=(1, 2))
def dft(node: NodeView) -> Converted:
    inverse, onesided = bool(node.attr("inverse", 0)), bool(node.attr("onesided", 0))

    def run(x: torch.Tensor, n: torch.Tensor | None = None, axis: torch.Tensor | None = None) -> torch.Tensor:
        a = -2 if axis is None else int(axis.reshape(-1)[0])
        return _dft(x, _length(n), a, inverse, onesided)

    return node.call(run, 0, 1, 2)


@converter("STFT", 17, shape_inputs=(1, 3))
def stft(node: NodeView) -> Converted:
    onesided = bool(node.attr("onesided", 1))

    def run(signal, step, window=None, frame_length=None) -> torch.Tensor:
        hop = int(step.reshape(-1)[0])
        size = _length(frame_length) or window.shape[0]
        frames = signal.unfold(1, size, hop).movedim(-1, 2)  # [batch, frames, size, 1|2]
        if window is not None:
            frames = frames * window.to(signal.dtype).reshape(1, 1, -1, 1)
        return _dft(frames, size, 2, False, onesided)

    return node.call(run, 0, 1, 2, 3)


@converter("MelWeightMatrix", 17, shape_inputs=(0, 1, 2, 3, 4))
def mel_weight_matrix(node: NodeView) -> Converted:
    code = node.attr("output_datatype", 1)
    dtype = torch_dtype(code)
    if dtype is None:
        raise node.unsupported(f"output_datatype {code}")

    def run(bins, length, rate, low, high) -> torch.Tensor:
        # The triangles of onnx's reference, step for step (mel(f) = 2595 log10(1 + f / 700)).
        n_mel, n_fft = int(bins.reshape(-1)[0]), int(length.reshape(-1)[0])
        lo_hz, hi_hz, sr = (float(t.reshape(-1)[0]) for t in (low, high, rate))
        lo, hi = 2595 * math.log1p(lo_hz / 700) / math.log(10), 2595 * math.log1p(hi_hz / 700) / math.log(10)
        step = (hi - lo) / (n_mel + 2)
        edges = torch.arange(n_mel + 2, dtype=torch.float64) * step + lo
        edges = 700 * torch.expm1(edges / 2595 * math.log(10))
        edges = torch.div((n_fft + 1) * edges, sr, rounding_mode="floor").to(torch.int64).tolist()
        out = torch.zeros(n_fft // 2 + 1, n_mel, dtype=torch.float64)
        for i in range(n_mel):
            left, center, right = edges[i : i + 3]
            if center == left:
                out[center, i] = 1
            else:
                for j in range(left, center + 1):
                    out[j, i] = (j - left) / (center - left)
            for j in range(center, right):
                out[j, i] = (right - j) / (right - center)
        return out.to(dtype)

    return node.call(run, 0, 1, 2, 3, 4)
