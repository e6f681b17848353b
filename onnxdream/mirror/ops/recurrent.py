"""Recurrent layers: RNN, GRU and LSTM (any direction, sequence lengths, layout, clip).

Written out step by step from the ONNX equations (gate orders ``zrh`` for GRU, ``iofc`` for
LSTM), so every gate, activation and sequence-length rule is the spec's, and autograd flows.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from onnxdream.mirror.registry import Converted, NodeView, converter

Act = Callable[[torch.Tensor], torch.Tensor]

_TAKES = {"Affine": 2, "LeakyRelu": 1, "ThresholdedRelu": 1, "ScaledTanh": 2, "HardSigmoid": 2, "Elu": 1}
_DEFAULT_ALPHA = {
    "LeakyRelu": 0.01,
    "ThresholdedRelu": 1.0,
    "Elu": 1.0,
    "HardSigmoid": 0.2,
    "Affine": 1.0,
    "ScaledTanh": 1.0,
}
_DEFAULT_BETA = {"HardSigmoid": 0.5, "Affine": 0.0, "ScaledTanh": 1.0}


def _activation(name: str, alpha: float | None, beta: float | None) -> Act | None:
    a = _DEFAULT_ALPHA.get(name) if alpha is None else alpha
    b = _DEFAULT_BETA.get(name) if beta is None else beta
    table: dict[str, Act] = {
        "Relu": torch.relu,
        "Tanh": torch.tanh,
        "Sigmoid": torch.sigmoid,
        "Softsign": F.softsign,
        "Softplus": F.softplus,
        "Affine": lambda x: a * x + b,
        "LeakyRelu": lambda x: F.leaky_relu(x, a),
        "ThresholdedRelu": lambda x: torch.where(x > a, x, torch.zeros_like(x)),
        "ScaledTanh": lambda x: a * torch.tanh(b * x),
        "HardSigmoid": lambda x: torch.clamp(a * x + b, 0.0, 1.0),
        "Elu": lambda x: F.elu(x, a),
    }
    return table.get(name)


def _activations(node: NodeView, defaults: list[str], directions: int) -> list[list[Act]]:
    names = node.attr("activations") or defaults * directions
    alphas = list(node.attr("activation_alpha") or [])
    betas = list(node.attr("activation_beta") or [])
    acts: list[Act] = []
    for name in names:
        takes = _TAKES.get(name, 0)
        alpha = alphas.pop(0) if takes >= 1 and alphas else None
        beta = betas.pop(0) if takes >= 2 and betas else None
        fn = _activation(name, alpha, beta)
        if fn is None:
            raise node.unsupported(f"activation {name!r}")
        acts.append(fn)
    per = len(defaults)
    if len(acts) != per * directions:
        raise node.unsupported(f"{len(acts)} activations for {directions} direction(s)")
    return [acts[d * per : (d + 1) * per] for d in range(directions)]


def _reverse_within(x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """Reverse each batch column of ``x`` [seq, batch, ...] within its length."""
    steps = torch.arange(x.shape[0], device=x.device).reshape(-1, 1)
    n = lens.reshape(1, -1)
    index = torch.where(steps < n, n - 1 - steps, steps)
    return torch.gather(x, 0, index.reshape(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


def _recurrent(node: NodeView, gates: int, defaults: list[str], cell) -> Converted:
    direction = node.attr("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise node.unsupported(f"direction {direction!r}")
    dirs = 2 if direction == "bidirectional" else 1
    acts = _activations(node, defaults, dirs)
    clip = node.attr("clip")
    layout = node.attr("layout", 0)
    hidden = node.attr("hidden_size")
    lstm = gates == 4
    n_out = len(node.outputs)

    def run(x, w, r, b=None, lens=None, h0=None, c0=None, p=None):
        if layout:
            x = x.transpose(0, 1)
            h0 = None if h0 is None else h0.transpose(0, 1)
            c0 = None if c0 is None else c0.transpose(0, 1)
        seq, batch = x.shape[0], x.shape[1]
        size = hidden or r.shape[-1]
        n = (
            torch.full((batch,), seq, dtype=torch.int64, device=x.device)
            if lens is None
            else lens.to(device=x.device, dtype=torch.int64)
        )
        ys, hs, cs = [], [], []
        for d in range(dirs):
            reverse = direction == "reverse" or d == 1
            xs = _reverse_within(x, n) if reverse else x
            bias = b[d] if b is not None else torch.zeros(2 * gates * size, dtype=x.dtype, device=x.device)
            wb, rb = bias[: gates * size], bias[gates * size :]
            h = h0[d] if h0 is not None else torch.zeros(batch, size, dtype=x.dtype, device=x.device)
            c = c0[d] if c0 is not None else torch.zeros(batch, size, dtype=x.dtype, device=x.device)
            peep = p[d] if p is not None else None
            xw = xs @ w[d].T + wb  # all steps at once: [seq, batch, gates * size]
            out = []
            for t in range(seq):
                live = (t < n).reshape(-1, 1)
                h_new, c_new = cell(xw[t], h, c, r[d], rb, peep, acts[d], clip, size)
                h = torch.where(live, h_new, h)
                if lstm:
                    c = torch.where(live, c_new, c)
                out.append(torch.where(live, h_new, torch.zeros_like(h_new)))
            y = torch.stack(out)
            ys.append(_reverse_within(y, n) if reverse else y)
            hs.append(h)
            cs.append(c)
        y = torch.stack(ys, dim=1)  # [seq, dirs, batch, hidden]
        y_h, y_c = torch.stack(hs), torch.stack(cs)
        if layout:
            y, y_h, y_c = y.permute(2, 0, 1, 3), y_h.transpose(0, 1), y_c.transpose(0, 1)
        outs = [y, y_h, y_c][: max(n_out, 1)]
        return outs[0] if len(outs) == 1 else outs

    return node.call(run, *range(8 if lstm else 6))


def _clipped(v: torch.Tensor, clip: float | None) -> torch.Tensor:
    return v if clip is None else torch.clamp(v, -clip, clip)


def _rnn_cell(xw, h, c, r, rb, peep, acts, clip, size):
    return acts[0](_clipped(xw + h @ r.T + rb, clip)), c


def _gru_cell(linear_before_reset: bool):
    def cell(xw, h, c, r, rb, peep, acts, clip, size):
        f, g = acts
        xz, xr, xh = xw.split(size, dim=-1)
        rz, rr, rh = r.split(size, dim=0)
        bz, br, bh = rb.split(size)
        z = f(_clipped(xz + h @ rz.T + bz, clip))
        reset = f(_clipped(xr + h @ rr.T + br, clip))
        if linear_before_reset:
            cand = g(_clipped(xh + reset * (h @ rh.T + bh), clip))
        else:
            cand = g(_clipped(xh + (reset * h) @ rh.T + bh, clip))
        return (1 - z) * cand + z * h, c

    return cell


def _lstm_cell(xw, h, c, r, rb, peep, acts, clip, size):
    f, g, hact = acts
    gates = xw + h @ r.T + rb
    gi, go, gf, gc = gates.split(size, dim=-1)
    pi, po, pf = peep.split(size) if peep is not None else (0, 0, 0)
    i = f(_clipped(gi + pi * c, clip))
    fg = f(_clipped(gf + pf * c, clip))
    cand = g(_clipped(gc, clip))
    c_new = fg * c + i * cand
    o = f(_clipped(go + po * c_new, clip))
    return o * hact(c_new), c_new


@converter("RNN", 7)
def rnn(node: NodeView) -> Converted:
    return _recurrent(node, 1, ["Tanh"], _rnn_cell)


@converter("GRU", 7)
def gru(node: NodeView) -> Converted:
    return _recurrent(node, 3, ["Sigmoid", "Tanh"], _gru_cell(bool(node.attr("linear_before_reset", 0))))


@converter("LSTM", 7)
def lstm(node: NodeView) -> Converted:
    if node.attr("input_forget", 0):
        raise node.unsupported("input_forget=1")
    return _recurrent(node, 4, ["Sigmoid", "Tanh", "Tanh"], _lstm_cell)
