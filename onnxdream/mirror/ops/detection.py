"""Detection ops: NonMaxSuppression (greedy, per batch and class; no torchvision) and RoiAlign."""

from __future__ import annotations

import math

import torch

from onnxdream.mirror.registry import Converted, NodeView, converter


def _corners(boxes: torch.Tensor, center: bool) -> torch.Tensor:
    """Boxes as [y1, x1, y2, x2] with y1 <= y2 and x1 <= x2."""
    if center:
        xc, yc, w, h = boxes.unbind(-1)
        return torch.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], dim=-1)
    y1, x1, y2, x2 = boxes.unbind(-1)
    return torch.stack(
        [torch.minimum(y1, y2), torch.minimum(x1, x2), torch.maximum(y1, y2), torch.maximum(x1, x2)], -1
    )


def _iou(box: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    top = torch.maximum(box[0], others[:, 0])
    left = torch.maximum(box[1], others[:, 1])
    bottom = torch.minimum(box[2], others[:, 2])
    right = torch.minimum(box[3], others[:, 3])
    inter = (bottom - top).clamp(min=0) * (right - left).clamp(min=0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    valid = (inter > 0) & (area > 0) & (areas > 0) & (union > 0)
    return torch.where(
        valid, inter / torch.where(union > 0, union, torch.ones_like(union)), torch.zeros_like(union)
    )


@converter("NonMaxSuppression", 10)
def non_max_suppression(node: NodeView) -> Converted:
    center = bool(node.attr("center_point_box", 0))

    def run(boxes, scores, max_out=None, iou=None, score=None) -> torch.Tensor:
        limit = 0 if max_out is None or max_out.numel() == 0 else max(int(max_out.reshape(-1)[0]), 0)
        iou_t = 0.0 if iou is None or iou.numel() == 0 else float(iou.reshape(-1)[0])
        score_t = None if score is None or score.numel() == 0 else float(score.reshape(-1)[0])
        picked: list[tuple[int, int, int]] = []
        corners = _corners(boxes.detach().cpu().to(torch.float64), center)
        values = scores.detach().cpu().to(torch.float64)
        for b in range(values.shape[0]):
            for c in range(values.shape[1]):
                s = values[b, c]
                # Highest score first; equal scores keep the lower box index first.
                order = sorted(range(s.numel()), key=lambda i: (-float(s[i]), i))
                if score_t is not None:
                    order = [i for i in order if float(s[i]) > score_t]
                kept: list[int] = []
                for i in order:
                    if len(kept) >= limit:
                        break
                    if kept and bool((_iou(corners[b, i], corners[b, kept]) > iou_t).any()):
                        continue
                    kept.append(i)
                    picked.append((b, c, i))
        return torch.tensor(picked, dtype=torch.int64, device=boxes.device).reshape(-1, 3)

    return node.call(run, 0, 1, 2, 3, 4)


def _bilinear_terms(img: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The four weighted corner values at points (y[i], x[j]) of ``img`` [C, H, W]: [4, C, len(y), len(x)].

    Points more than one pixel outside the image give 0; the rest are clamped to its border
    (the rule RoiAlign shares with torchvision and ONNX Runtime).
    """
    height, width = img.shape[-2:]
    y_out = (y < -1.0) | (y > height)
    x_out = (x < -1.0) | (x > width)
    y, x = y.clamp(min=0), x.clamp(min=0)
    y0, x0 = y.floor().long().clamp(max=height - 1), x.floor().long().clamp(max=width - 1)
    y1, x1 = (y0 + 1).clamp(max=height - 1), (x0 + 1).clamp(max=width - 1)
    y = torch.where(y0 >= height - 1, y0.to(y.dtype), y)
    x = torch.where(x0 >= width - 1, x0.to(x.dtype), x)
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    keep = (~y_out).reshape(-1, 1) & (~x_out).reshape(1, -1)
    terms = []
    for yi, wy in ((y0, hy), (y1, ly)):
        for xi, wx in ((x0, hx), (x1, lx)):
            value = img[:, yi][:, :, xi]  # [C, len(y), len(x)]
            terms.append(value * (wy.reshape(-1, 1) * wx.reshape(1, -1) * keep))
    return torch.stack(terms)


@converter("RoiAlign", 10)
def roi_align(node: NodeView) -> Converted:
    mode = node.attr("mode", "avg")
    if mode not in ("avg", "max"):
        raise node.unsupported(f"mode {mode!r}")
    half_pixel = node.attr(
        "coordinate_transformation_mode", "half_pixel" if node.opset >= 16 else "output_half_pixel"
    )
    offset = 0.5 if half_pixel == "half_pixel" else 0.0
    out_h, out_w = node.attr("output_height", 1), node.attr("output_width", 1)
    ratio, scale = node.attr("sampling_ratio", 0), node.attr("spatial_scale", 1.0)

    def one(img: torch.Tensor, roi: list[float]) -> torch.Tensor:
        x1, y1, x2, y2 = (v * scale - offset for v in roi)
        roi_w, roi_h = x2 - x1, y2 - y1
        if not offset:  # the legacy mode keeps RoIs at least one pixel wide
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / out_h, roi_w / out_w
        grid_h = ratio if ratio > 0 else math.ceil(roi_h / out_h)
        grid_w = ratio if ratio > 0 else math.ceil(roi_w / out_w)
        fy = (torch.arange(grid_h, dtype=img.dtype, device=img.device) + 0.5) / grid_h
        fx = (torch.arange(grid_w, dtype=img.dtype, device=img.device) + 0.5) / grid_w
        ys = y1 + (torch.arange(out_h, dtype=img.dtype, device=img.device).reshape(-1, 1) + fy) * bin_h
        xs = x1 + (torch.arange(out_w, dtype=img.dtype, device=img.device).reshape(-1, 1) + fx) * bin_w
        terms = _bilinear_terms(img, ys.reshape(-1), xs.reshape(-1))  # [4, C, out_h*gh, out_w*gw]
        terms = terms.reshape(4, img.shape[0], out_h, grid_h, out_w, grid_w)
        if mode == "avg":
            return terms.sum(0).mean(dim=(2, 4))
        return terms.amax(dim=(0, 3, 5))

    def run(x: torch.Tensor, rois: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        picks = batch.reshape(-1).tolist()
        boxes = rois.detach().to(torch.float64).cpu().tolist()
        if not boxes:
            return x.new_zeros(0, x.shape[1], out_h, out_w)
        return torch.stack([one(x[int(b)], box) for b, box in zip(picks, boxes, strict=True)])

    return node.call(run, 0, 1, 2)
