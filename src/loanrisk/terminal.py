"""Consoles for the command line: readable tables in a terminal, a pipe, a log or CI."""

from __future__ import annotations

import os
import sys

from rich.console import Console

PIPE_WIDTH = 140


def width() -> int | None:
    """Rich falls back to 80 columns when output is not a terminal, which cuts the model tables
    ("majori…"); take ``PIPE_WIDTH`` there unless COLUMNS says otherwise."""
    return None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH


def make_console(*, stderr: bool = False) -> Console:
    """A Rich console for stdout (or stderr) with that width rule."""
    return Console(stderr=stderr, width=width())
