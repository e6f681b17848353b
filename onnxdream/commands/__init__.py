"""One module per CLI command; each exposes a typer-ready function that ``cli.py`` registers.

Start-up rule: ``onnxdream --help`` and every command's ``--help`` must not import torch, onnx,
onnxruntime, numpy or Pillow (torch and onnx alone take seconds to import). typer builds the help
from the signatures, so a command module imports at module level only typer, the shared options
(``commands.options``, ``commands.common``, ``commands.command``), ``onnxdream.errors`` and
light constants (``inputs.limits``). Everything else is imported inside the command's body (or
under ``if TYPE_CHECKING:`` for annotations; ``from __future__ import annotations`` keeps them
unevaluated). ``tests/test_startup.py`` holds the rule for every registered command, and
``python tools/bench_startup.py`` measures it.
"""
