"""The driver: plan every item, skip the ones the store holds, run the rest through an executor,
write each result as it arrives, then render the pages.

Items and their keys (hash of the model's bytes, the settings and :data:`FORMAT`):

- one batch of ``--images`` through ONNX Runtime, per layer (``dataset``);
- one batch of channel visualisations of a layer (``visual``);
- one layer's dream of the reference image (``dream``);
- one page with its pictures (``page``; its key also covers the results it shows).

A killed build keeps every finished item (each is written atomically); a rerun computes only
what is missing, and adding layers adds their items and pages without redoing the rest.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from onnxdream.errors import OnnxDreamError, OptionError
from onnxdream.executors import Executor, InProcessExecutor, Job
from onnxdream.io import atomic_path
from onnxdream.itemstore import ItemStore, content_key, file_digest
from onnxdream.microscope.dataset import DatasetItem, DatasetJob, batches, prepare_image
from onnxdream.microscope.mirror_items import DreamItem, MirrorJob, MirrorSettings, VisualItem
from onnxdream.microscope.plan import LayerInfo, TreeNode, layer_tree, plan_layers
from onnxdream.microscope.site import Crop, PageItem, PageJob, asset_files
from onnxdream.microscope.stats import LayerStats, summarize
from onnxdream.model import Model
from onnxdream.paths import check_writes

FORMAT = 1
"""Part of every item key: bump it when what an item holds (or how a page looks) changes."""
CACHE = ".microscope"
"""The item store, inside the site folder (``SITE/.microscope/``)."""
KINDS = ("dataset", "visual", "dream", "page")


@dataclass
class MicroscopeOptions:
    """Everything that shapes a site (the CLI options of the same names)."""

    channels: int = 16
    size: int = 128
    steps: int = 128
    batch: int = 16
    top_k: int = 8
    image_batch: int = 16
    image_size: int = 224
    dream_steps: int = 10
    dream_octaves: int = 3
    dream_size: int = 224
    seed: int = 0
    check: bool = True
    device: str = "auto"
    max_pixels: int = 0

    def __post_init__(self) -> None:
        for name in (
            "size",
            "steps",
            "batch",
            "top_k",
            "image_batch",
            "image_size",
            "dream_steps",
            "dream_octaves",
            "dream_size",
        ):
            if getattr(self, name) < 1:
                raise OptionError(f"{{{name}}} must be at least 1, got {getattr(self, name)}", name)
        if self.channels < 0:
            raise OptionError(f"{{channels}} must be 0 (all) or more, got {self.channels}", "channels")


@dataclass
class MicroscopeResult:
    """What a build did: the site, its layers, and per kind how many items were computed or reused."""

    site: Path
    layers: list[str]
    images: int
    skipped_images: list[str]
    skipped_layers: list[str]
    total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    computed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "site": str(self.site),
            "index": str(self.site / "index.html"),
            "layers": self.layers,
            "images": self.images,
            "skipped_images": self.skipped_images,
            "skipped_layers": self.skipped_layers,
            "items": {
                "total": sum(self.total.values()),
                "computed": sum(self.computed.values()),
                "cached": sum(self.total.values()) - sum(self.computed.values()),
                "by_kind": {k: {"total": self.total[k], "computed": self.computed[k]} for k in KINDS},
            },
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        items = self.to_json()["items"]
        return (
            f"microscope: {len(self.layers)} layer(s), {self.images} image(s); {items['computed']} of "
            f"{items['total']} items computed ({items['cached']} reused) in {self.seconds:.1f}s -> "
            f"{self.site / 'index.html'}"
        )


Progress = Callable[[str, int], None]
"""``progress(kind, count)``: ``count`` more items of ``kind`` are done (computed or reused)."""


def _npz(values: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in values.items()})
    return buffer.getvalue()


def _suffix(kind: str) -> str:
    """Store suffix of an item kind: ``.visual.npz``, ``.page.json``, ... (a store lists by kind)."""
    return f".{kind}.json" if kind == "page" else f".{kind}.npz"


def _load_npz(store: ItemStore, key: str, kind: str) -> dict[str, np.ndarray] | None:
    data = store.read_bytes(key, _suffix(kind))
    if data is None:
        return None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except (ValueError, OSError, EOFError, KeyError):
        return None


def _write_site_file(site: Path, relative: str, data: bytes) -> None:
    target = site / relative
    try:
        if target.is_file() and target.read_bytes() == data:
            return
    except OSError:
        pass
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


@dataclass
class _Source:
    """The model as the jobs read it (a file path) and the digest every key starts from."""

    path: str
    digest: str
    label: str


def _model_source(spec: str, trust_pickle: bool, store: ItemStore) -> tuple[Model, _Source]:
    from onnxdream.model import open_model

    model = open_model(spec, trust_pickle=trust_pickle)
    if model.kind == "file" and model.path is not None:
        digest = content_key(*[file_digest(p) for p in model.files])
        return model, _Source(str(model.path), digest, spec)
    data = model.proto.SerializeToString()
    digest = content_key(data)
    key = content_key("model", digest)
    if not store.has(key, ".onnx"):
        store.write_bytes(key, ".onnx", data)
    return model, _Source(str(store.path(key, ".onnx")), digest, spec)


def _image_size(model: Model, fallback: int) -> tuple[str, tuple[int, int]]:
    from onnxdream.inputs.feeds import input_spec

    spec = input_spec(model.proto)
    if spec.dtype.kind != "f" or spec.dims is None or len(spec.dims) != 4 or spec.dims[1] not in (3, None):
        raise OnnxDreamError(
            f"{model.source}: the microscope needs a float image input (N, 3, H, W); input {spec.name!r} "
            f"is {spec.dtype} with dims {spec.dims}"
        )
    height, width = spec.dims[2], spec.dims[3]
    return spec.name, (height or fallback, width or fallback)


class _Run:
    """Runs one kind of items through the executor and writes each result with ``save``.

    Without an executor given, each phase gets its own in-process one, closed after it: the
    dataset pass's sessions are gone before the mirror is built.
    """

    def __init__(self, executor: Executor | None, result: MicroscopeResult, progress: Progress) -> None:
        self.executor, self.result, self.progress = executor, result, progress

    def __call__(
        self, kind: Callable[[Any], str], job: Job, items: Sequence[Any], save: Callable[[Any, Any], None]
    ) -> None:
        if not items:
            return
        executor = self.executor or InProcessExecutor()
        results = executor.map_unordered(job, items)
        try:
            for item, value in results:
                save(item, value)
                self.result.computed[kind(item)] += 1
                self.progress(kind(item), 1)
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()
            if self.executor is None:
                executor.close()


def build_site(
    model: str,
    site: str | os.PathLike[str],
    *,
    images: str | os.PathLike[str] | None = None,
    layers: Sequence[str] = (),
    match: Sequence[str] = (),
    options: MicroscopeOptions | None = None,
    trust_pickle: bool = False,
    executor: Executor | None = None,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
) -> MicroscopeResult:
    """Build (or bring up to date) the microscope site of ``model`` in ``site``.

    ``executor``: where the items run (default: in this process); workers elsewhere (Ray) get
    the model as ONNX bytes and the driver's torch thread count, and read ``images`` at the
    driver's paths. Either way this process writes every item and page.

    Raises:
        UnknownLayerError: a ``layers`` name or ``match`` glob that matches nothing.
        OnnxDreamError: no layer with a feature map, a model without an image input, an images
            folder with no readable image, bad options.
    """
    from onnxdream.dream.batch import images_in

    start = time.perf_counter()
    options = options or MicroscopeOptions()
    site = Path(site)
    if site.exists() and not site.is_dir():
        raise OnnxDreamError(f"{site}: the site is a folder; a file is in the way")
    if images is not None and Path(images).resolve() == site.resolve():
        raise OnnxDreamError(f"{site}: refusing to write the site into the images folder")
    store = ItemStore(site / CACHE)
    opened, source = _model_source(model, trust_pickle, store)
    check_writes(opened.files, [site / "index.html"])
    input_name, size = _image_size(opened, options.image_size)
    chosen, skipped_layers = plan_layers(opened, input_name, layers, match)
    if not chosen:
        raise OnnxDreamError(f"{opened.source}: no layer with a float feature map (N, C, H, W) to show")
    paths = images_in(images) if images is not None else []
    if images is not None and not paths:
        raise OnnxDreamError(f"{images}: no image files in the folder")
    digests = {str(p): file_digest(p) for p in paths}
    result = MicroscopeResult(site, [c.name for c in chosen], 0, [], skipped_layers)
    progress = progress or (lambda _kind, _count: None)
    run = _Run(executor, result, progress)

    # Plan every item, then report the total before anything runs (for the progress bar).
    image_batches = batches(paths, options.image_batch)

    def dataset_key(batch: tuple[str, ...], layer: LayerInfo) -> str:
        return content_key(
            "dataset",
            FORMAT,
            source.digest,
            layer.name,
            layer.tensor,
            [digests[p] for p in batch],
            size,
            options.max_pixels,
        )

    dataset: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    dataset_items = []
    for b, batch in enumerate(image_batches):
        missing = []
        for layer in chosen:
            found = _load_npz(store, dataset_key(batch, layer), "dataset")
            if found is None:
                missing.append((layer.name, layer.tensor))
            else:
                dataset[(b, layer.name)] = found
        if missing:
            dataset_items.append(DatasetItem(b, batch, tuple(missing)))
    settings = MirrorSettings(
        options.size, options.steps, options.dream_steps, options.dream_octaves, options.check
    )
    shown = {layer.name: _shown_channels(layer, options.channels) for layer in chosen}
    visual_keys: dict[VisualItem, str] = {}
    for layer in chosen:
        for k in range(0, len(shown[layer.name]), options.batch):
            chunk = tuple(shown[layer.name][k : k + options.batch])
            item = VisualItem(layer.name, chunk, options.seed + k // options.batch)
            visual_keys[item] = content_key("visual", FORMAT, source.digest, asdict(item), asdict(settings))
    reference, reference_id = _reference(paths, digests, options)
    dream_keys = {
        DreamItem(layer.name): content_key(
            "dream", FORMAT, source.digest, layer.name, reference_id, asdict(settings)
        )
        for layer in chosen
    }
    # A result that cannot be read back counts as missing (it is loaded, then let go: memory stays flat).
    visual_todo = [item for item, key in visual_keys.items() if _load_npz(store, key, "visual") is None]
    dream_todo = [item for item, key in dream_keys.items() if _load_npz(store, key, "dream") is None]
    result.total.update(dataset=len(image_batches), visual=len(visual_keys), dream=len(dream_keys))
    page_count = 1 + len(chosen) + sum(len(v) for v in shown.values())
    result.total["page"] = page_count
    if on_total is not None:
        on_total(sum(result.total.values()))
    progress("dataset", len(image_batches) - len(dataset_items))
    progress("visual", len(visual_keys) - len(visual_todo))
    progress("dream", len(dream_keys) - len(dream_todo))

    def save_dataset(item: DatasetItem, value: dict) -> None:
        for name, _tensor in item.layers:
            layer = by_name[name]
            reduced = dict(value["layers"].get(name, {}))
            reduced["valid"] = value["valid"]
            reduced["errors"] = np.array(value["errors"], dtype=str)
            store.write_bytes(dataset_key(item.paths, layer), _suffix("dataset"), _npz(reduced))
            dataset[(item.batch, name)] = reduced

    by_name = {layer.name: layer for layer in chosen}
    shipped = _shipped_model(opened, executor)
    run(
        lambda _item: "dataset",
        DatasetJob(source.path, size, options.device, options.max_pixels, shipped),
        dataset_items,
        save_dataset,
    )

    mirror_keys = {**visual_keys, **dream_keys}

    def save_mirror(item: VisualItem | DreamItem, value: dict) -> None:
        store.write_bytes(mirror_keys[item], _suffix(_mirror_kind(item)), _npz(value))

    threads = None if shipped is None else _torch_threads()
    mirror_job = MirrorJob(source.path, settings, reference, options.device, shipped, threads)
    run(_mirror_kind, mirror_job, visual_todo + dream_todo, save_mirror)

    stats = _layer_stats(chosen, image_batches, dataset, options.top_k, result)
    pages = _pages(
        source, chosen, shown, stats, store, visual_keys, dream_keys, digests, size, options, result
    )
    pages_todo = []
    for key, page in pages:
        if not store.has(key, _suffix("page")) or not all((site / p).is_file() for p in page.outputs()):
            pages_todo.append((key, page))
    progress("page", len(pages) - len(pages_todo))
    page_keys = {id(page): key for key, page in pages_todo}

    def save_page(page: PageItem, files: dict[str, bytes]) -> None:
        for relative in page.outputs():
            _write_site_file(site, relative, files[relative])
        store.write_bytes(page_keys[id(page)], _suffix("page"), json.dumps(page.outputs()).encode())

    for relative, data in asset_files().items():
        _write_site_file(site, relative, data)
    run(lambda _item: "page", PageJob(), [page for _, page in pages_todo], save_page)
    result.seconds = time.perf_counter() - start
    return result


def _shipped_model(model: Model, executor: Executor | None) -> bytes | None:
    """The model's ONNX bytes for workers elsewhere (they may not see the driver's files); else None."""
    if executor is None or isinstance(executor, InProcessExecutor):
        return None
    return model.proto.SerializeToString()


def _torch_threads() -> int:
    """The driver's torch thread count, which workers use: same count, same float sums, same bits."""
    import torch

    return torch.get_num_threads()


def _mirror_kind(item: VisualItem | DreamItem) -> str:
    """Mirror items run as one job (one mirror per worker) but count as visual or dream items."""
    return "dream" if isinstance(item, DreamItem) else "visual"


def _shown_channels(layer: LayerInfo, count: int) -> list[int]:
    total = layer.channels
    if total is None:
        raise OnnxDreamError(f"layer {layer.name!r}: its channel count is unknown (shape {layer.shape})")
    return list(range(total if count == 0 else min(count, total)))


def _reference(
    paths: Sequence[Path], digests: dict[str, str], options: MicroscopeOptions
) -> tuple[np.ndarray, list[Any]]:
    """The image every layer dreams on: the first readable one of the folder, else the demo clouds."""
    for path in paths:
        try:
            side = (options.dream_size, options.dream_size)
            return prepare_image(path, side, options.max_pixels), ["image", digests[str(path)], side]
        except OnnxDreamError:
            continue
    from onnxdream.dream.demo import demo_image

    return demo_image(options.dream_size), ["demo", options.dream_size]


def _layer_stats(
    chosen: Sequence[LayerInfo],
    image_batches: Sequence[tuple[str, ...]],
    dataset: dict[tuple[int, str], dict[str, np.ndarray]],
    top_k: int,
    result: MicroscopeResult,
) -> dict[str, tuple[LayerStats, list[str], tuple[int, int]]]:
    """Per layer: its statistics, the readable images in order, and its feature map's (h, w)."""
    found: dict[str, tuple[LayerStats, list[str], tuple[int, int]]] = {}
    if not image_batches:
        return found
    readable: list[str] = []
    skipped: list[str] = []
    first = chosen[0].name
    for b, batch in enumerate(image_batches):
        part = dataset[(b, first)]
        readable += [p for p, ok in zip(batch, part["valid"], strict=True) if ok]
        skipped += [str(e) for e in part["errors"]]
    result.images, result.skipped_images = len(readable), skipped
    if not readable:
        raise OnnxDreamError("no image of the folder could be read: " + "; ".join(skipped[:3]))
    for layer in chosen:
        parts = [dataset[(b, layer.name)] for b in range(len(image_batches))]
        parts = [p for p in parts if "max" in p]
        h, w = (int(v) for v in parts[0]["map_size"])
        found[layer.name] = (summarize(parts, w, top_k), readable, (h, w))
    return found


def _spec(name: str, channel: int | None = None) -> str:
    return shlex.quote(name if channel is None else f"{name}:{channel}")


def _tree_dicts(nodes: Iterable[TreeNode]) -> list[dict[str, Any]]:
    return [
        {
            "name": n.name,
            "label": n.label,
            "layer": None if n.layer is None else {"slug": n.layer.slug, "op_type": n.layer.op_type},
            "children": _tree_dicts(n.children),
        }
        for n in nodes
    ]


def _pages(
    source: _Source,
    chosen: Sequence[LayerInfo],
    shown: dict[str, list[int]],
    stats: dict[str, tuple[LayerStats, list[str], tuple[int, int]]],
    store: ItemStore,
    visual_keys: dict[VisualItem, str],
    dream_keys: dict[DreamItem, str],
    digests: dict[str, str],
    size: tuple[int, int],
    options: MicroscopeOptions,
    result: MicroscopeResult,
) -> list[tuple[str, PageItem]]:
    """Every page item with its key (the key covers the page's context and the results it shows)."""
    model_label = source.label
    model_arg = shlex.quote(model_label)
    pages: list[tuple[str, PageItem]] = []

    def add(page: PageItem, *depends: object) -> None:
        key = content_key("page", FORMAT, page.template, page.path, page.context, *depends)
        pages.append((key, page))

    common = {"model": model_label, "digest": source.digest[:12]}
    add(
        PageItem(
            "index.html",
            "index.html",
            {
                **common,
                "layer_tree": _tree_dicts(layer_tree(chosen)),
                "layer_count": len(chosen),
                "images": result.images,
                "skipped_layers": result.skipped_layers,
                "skipped_images": result.skipped_images,
            },
        )
    )
    visual_of: dict[tuple[str, int], tuple[str, int]] = {}
    for item, key in visual_keys.items():
        for k, c in enumerate(item.channels):
            visual_of[(item.layer, c)] = (key, k)
    for layer in chosen:
        folder = f"img/{layer.slug}"
        layer_stats = stats.get(layer.name)
        dream = _load_npz(store, dream_keys[DreamItem(layer.name)], "dream") or {
            "error": np.array("result missing")
        }
        loaded: dict[str, dict[str, np.ndarray] | None] = {}
        channels = []
        for c in shown[layer.name]:
            key, k = visual_of[(layer.name, c)]
            if key not in loaded:
                loaded[key] = _load_npz(store, key, "visual")
            channels.append((c, loaded[key], k))
        dead = set(layer_stats[0].dead) if layer_stats else set()
        facts = {
            "name": layer.name,
            "slug": layer.slug,
            "op_type": layer.op_type,
            "origin": layer.origin,
            "tensor": layer.tensor,
            "shape": " x ".join("?" if d is None else str(d) for d in layer.shape),
            "field": None if layer.field.size is None else [round(v, 1) for v in layer.field.size],
        }
        layer_context = {
            **common,
            "layer": facts,
            "dream_spec": f"onnxdream dream IMAGE OUT --model {model_arg} --layer {_spec(layer.name)}",
            "stats": None
            if layer_stats is None
            else {
                "images": layer_stats[0].images,
                "mean": layer_stats[0].mean,
                "sparsity": layer_stats[0].sparsity,
                "dead": layer_stats[0].dead,
                "channels": layer.channels,
            },
            "dream": None if "image" not in dream else f"{folder}/dream.jpg",
            "dream_error": str(dream["error"]) if "error" in dream else None,
            "channels": [
                {
                    "channel": c,
                    "picture": None if value is None or "images" not in value else f"{folder}/vis-{c}.png",
                    "dead": c in dead,
                    "max": layer_stats[0].channel_max[c] if layer_stats else None,
                }
                for c, value, _ in channels
            ],
        }
        if "error" in dream:
            result.errors.append(f"layer {layer.name!r}, dream: {dream['error']}")
        dream_pictures = {f"{folder}/dream.jpg": dream["image"]} if "image" in dream else {}
        add(
            PageItem("layer.html", f"layers/{layer.slug}.html", layer_context, dream_pictures),
            dream_keys[DreamItem(layer.name)],
        )
        for position, (c, value, k) in enumerate(channels):
            picture_path = f"{folder}/vis-{c}.png"
            pictures = {picture_path: value["images"][k]} if value is not None and "images" in value else {}
            crops: dict[str, Crop] = {}
            top = []
            if layer_stats is not None:
                summary, readable, (h, w) = layer_stats
                scale = (size[0] / h, size[1] / w)
                for rank, entry in enumerate(summary.top[c]):
                    image_path = readable[entry.image]
                    box = layer.field.box(entry.y, entry.x, size[0], size[1], scale)
                    crop_path = f"{folder}/top-{c}-{rank}.jpg"
                    crops[crop_path] = Crop(image_path, size, box, options.max_pixels)
                    top.append(
                        {
                            "file": Path(image_path).name,
                            "value": entry.value,
                            "crop": crop_path,
                            "box": list(box),
                        }
                    )
            error = None
            if value is None:
                error = "result missing"
            elif "error" in value:
                error = str(value["error"])
                result.errors.append(f"layer {layer.name!r}, channel {c}: {error}")
            context = {
                **common,
                "layer": facts,
                "channel": c,
                "picture": picture_path if pictures else None,
                "error": error,
                "objective": None
                if value is None or "objectives" not in value
                else float(value["objectives"][k]),
                "warnings": []
                if value is None or "warnings" not in value
                else [str(w) for w in value["warnings"]],
                "visualize_spec": f"onnxdream visualize {model_arg} --layer {_spec(layer.name, c)}",
                "dream_spec": f"onnxdream dream IMAGE OUT --model {model_arg} --layer {_spec(layer.name, c)}",
                "stats": None
                if layer_stats is None
                else {
                    "mean": layer_stats[0].channel_mean[c],
                    "max": layer_stats[0].channel_max[c],
                    "active": layer_stats[0].channel_active[c],
                    "dead": c in dead,
                },
                "top": top,
                "previous": channels[position - 1][0] if position > 0 else None,
                "next": channels[position + 1][0] if position + 1 < len(channels) else None,
            }
            digests_of_crops = [digests[crop.path] for crop in crops.values()]
            add(
                PageItem("channel.html", f"channels/{layer.slug}/{c}.html", context, pictures, crops),
                visual_of[(layer.name, c)][0],
                digests_of_crops,
            )
    return pages
