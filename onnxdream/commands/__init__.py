"""One module per CLI command; each exposes a typer-ready function that ``cli.py`` registers."""
