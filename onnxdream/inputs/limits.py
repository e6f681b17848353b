"""Input limits, in a module that imports nothing heavy (the CLI's defaults read it at start-up)."""

from __future__ import annotations

MAX_PIXELS = 100_000_000
"""Largest input image read by default (width x height); ``--max-pixels`` changes it, 0 lifts it.
A 100-megapixel image is 1.2 GB as float RGB, before any model runs on it."""
