"""``python -m onnxdream`` runs the CLI."""

from onnxdream.cli import main

main()
