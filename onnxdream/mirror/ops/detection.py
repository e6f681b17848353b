"""Detection post-processing: NonMaxSuppression (greedy, per batch and class; no torchvision)."""

from __future__ import annotations

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
