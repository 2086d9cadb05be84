"""(being written) The attendance commands of `congso`."""

from __future__ import annotations

import click


def register(main: click.Group, report: click.Group) -> None:
    """Add this role's commands to `congso` and to `congso report`."""
