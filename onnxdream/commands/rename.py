"""``onnxdream rename``: keep, rebuild or map node names; nothing else in the model changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from onnxdream.commands.common import err_console, guarded, out_console, print_json, warn
from onnxdream.commands.options import (
    JsonOption,
    ModelArgument,
    ReferenceWeightsOption,
    TrustPickleOption,
    WeightsPrefixOption,
)
from onnxdream.errors import OnnxDreamError

if TYPE_CHECKING:
    from onnxdream.model import Model
    from onnxdream.names.apply import RenameResult


def _open_reference(spec: str, trust_pickle: bool, weights: str | None, weights_prefix: str | None) -> Model:
    """The reference model: an ONNX file or zoo model as it is, a torch SPEC exported on the fly
    (with ``--weights`` loaded into it)."""
    from onnxdream.model import open_model

    with err_console.status(f"loading the reference {spec}"):
        return open_model(spec, trust_pickle=trust_pickle, weights=weights, weights_prefix=weights_prefix)


def _print_summary(result: RenameResult, *, dry_run: bool, to_stderr: bool) -> None:
    from rich.table import Table

    console = err_console if to_stderr else out_console
    if dry_run:
        plan = Table("node", "new name", "origin", title="plan (dry run: nothing written)")
        for e in result.renamed:
            plan.add_row(e.old or "<empty>", e.new, e.origin)
        console.print(plan)
    summary = Table("origin", "nodes")
    for origin, count in result.plan.counts().items():
        summary.add_row(origin, str(count))
    console.print(summary)


@guarded
def rename_command(
    model: ModelArgument,
    output: Annotated[
        Path | None, typer.Argument(help="Output model (omit with --in-place or --dry-run).")
    ] = None,
    strategy: Annotated[
        list[str],
        typer.Option(
            "--strategy", "-s", help="auto (default), metadata, keras, weights, tensors, structure."
        ),
    ] = [],  # noqa: B006
    map_file: Annotated[
        Path | None, typer.Option("--map", help='JSON file {"old": "new"} of explicit renames.')
    ] = None,
    rule: Annotated[
        list[str], typer.Option("--rule", help="Regex rename 'REGEX=>REPLACEMENT' (repeatable).")
    ] = [],  # noqa: B006
    strip_prefix: Annotated[
        str | None, typer.Option("--strip-prefix", help="Remove this prefix from names (e.g. '0.').")
    ] = None,
    rename_all: Annotated[
        bool, typer.Option("--overwrite-names", help="Rename every node, not only those with lost names.")
    ] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write per-node {old, new, origin} as JSON.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; write nothing.")] = False,
    undo_renames: Annotated[
        bool, typer.Option("--undo", help="Restore the names recorded by earlier renames.")
    ] = False,
    in_place: Annotated[bool, typer.Option("--in-place", help="Allow writing over the input model.")] = False,
    reference: Annotated[
        str | None,
        typer.Option(help="Model with good names (.onnx) or an export SPEC (zoo:efficientnet-lite0)."),
    ] = None,
    min_score: Annotated[
        float, typer.Option("--min-score", min=0.0, max=1.0, help="Weakest reference match accepted.")
    ] = 0.5,
    as_json: JsonOption = False,
    trust_pickle: TrustPickleOption = False,
    weights: ReferenceWeightsOption = None,
    weights_prefix: WeightsPrefixOption = None,
) -> None:
    """Give nodes with lost names (empty, node_Conv_877, n4_2) meaningful, unique names.

    Evidence per node, strongest first: exporter metadata, parameter names,
    tensor names, graph structure; then --strip-prefix, --map and --rule.

    Only node names change: each renamed node records its origin, and the
    model records {new: old} so that --undo gives the old names back.

    Examples:

      onnxdream rename model.onnx named.onnx

      onnxdream rename finetuned.onnx out.onnx --strip-prefix 0. --report names.json

      onnxdream rename model.onnx out.onnx --rule '^gpu_0/=>' --dry-run

      onnxdream rename named.onnx restored.onnx --undo

      onnxdream rename stripped.onnx named.onnx --reference mypkg.nets:build --weights ft.pth
    """
    from onnxdream.io import data_path, save_model, staged
    from onnxdream.model import open_model
    from onnxdream.names.apply import rename, undo
    from onnxdream.names.mapping import Rule, load_map
    from onnxdream.names.plan import resolve_strategies
    from onnxdream.paths import check_writes

    if undo_renames and (strategy or map_file or rule or strip_prefix or rename_all or reference):
        raise OnnxDreamError("--undo restores recorded names; it takes no strategy, map, rule or reference")
    strategies = resolve_strategies(strategy)
    rules = [Rule.parse(r) for r in rule]
    mapping = load_map(map_file) if map_file else {}
    target = output if output is not None else (model if in_place else None)
    if target is None and not dry_run:
        raise OnnxDreamError("missing OUT.onnx (or pass --in-place to write over the input)")
    opened = open_model(model, trust_pickle=trust_pickle)
    if target is not None and output is None and opened.kind != "file":
        raise OnnxDreamError(
            f"{model}: --in-place rewrites an ONNX file; give OUT.onnx for a {opened.kind} model"
        )
    if (weights is not None or weights_prefix is not None) and not reference:
        raise OnnxDreamError("--weights loads weights into the --reference SPEC; give --reference")
    reference_model = _open_reference(reference, trust_pickle, weights, weights_prefix) if reference else None
    if not dry_run:
        writes = [target, data_path(target), report]
        reads = [*opened.files, map_file, *(reference_model.files if reference_model else [])]
        in_place_ok = [target, data_path(target)] if in_place else []
        check_writes(reads, writes, in_place=in_place_ok, hint="use --in-place")

    if undo_renames:
        result = undo(opened, inplace=True)
    else:
        result = rename(
            opened,
            strategies=strategies,
            rename_all=rename_all,
            mapping=mapping,
            rules=rules,
            strip_prefix=strip_prefix,
            reference=reference_model,
            min_score=min_score,
            inplace=True,
        )
    for warning in result.plan.warnings:
        warn(warning)
    if not dry_run:
        with staged() as staging:  # the model and the report: both or neither
            save_model(result.model, target, external_data=opened.external_data or None, staging=staging)
            if report is not None:
                text = json.dumps(result.report(), indent=2) + "\n"
                staging.path(report).write_text(text, encoding="utf-8")
    if as_json:
        print_json(result.report())
    _print_summary(result, dry_run=dry_run, to_stderr=as_json)
