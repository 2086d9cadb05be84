"""What every role's commands share: the gateway database, the office clock, a table."""

from __future__ import annotations

import click


def gateway_db(settings, readonly: bool = False):
    """The gateway database of this machine (``<data dir>/gateway.sqlite``).

    Writing commands run beside the running gateway (WAL); the gateway
    notices their commits and re-publishes what changed.
    """
    from ..gateway.db import open_db, open_readonly
    from ..gateway.service import db_path

    path = db_path(settings)
    try:
        return open_readonly(path) if readonly else open_db(path)
    except FileNotFoundError as e:
        raise click.ClickException(str(e)) from None


def office_now(settings):
    """Now, in the office's time zone."""
    from ..protocol import clock

    return clock.now(settings.site.timezone)


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    """A rich table, wide enough that Vietnamese names do not wrap mid-word."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console(width=max(Console().width, 120)).print(table)
