"""The ``onnxdream`` command line: a thin skin over the library (one module per command)."""

from __future__ import annotations

import typer

from onnxdream.commands import check, dream, export, expose, layers, microscope, rename, visualize
from onnxdream.commands.command import Command, aliased
from onnxdream.commands.common import EXIT_CODES, install_signal_handlers

app = typer.Typer(
    name="onnxdream",
    help="Keep, rebuild and expose layer names in ONNX models; Deep Dream any ONNX CNN by layer name."
    f"\n\n{EXIT_CODES}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root() -> None:
    """onnxdream: layer names that survive ONNX export, and Deep Dream by layer name."""


# Old spellings still parse but are hidden from --help: -m is --model, --all selects every layer.
app.command("export", cls=Command)(export.export_command)
app.command("layers", cls=aliased({"--op": "--op-type", "--all": "--constants"}))(layers.layers_command)
app.command("rename", cls=aliased({"--all": "--overwrite-names"}))(rename.rename_command)
app.command("expose-layers", cls=aliased({"-m": "--match"}))(expose.expose_layers)
app.command("check", cls=Command)(check.check_command)
app.command("dream", cls=aliased({"--channels": "--channel-order"}))(dream.dream_command)
app.command("visualize", cls=Command)(visualize.visualize_command)
app.command("microscope", cls=Command)(microscope.microscope_command)


def main() -> None:
    """Console-script entry point."""
    install_signal_handlers()
    app()
