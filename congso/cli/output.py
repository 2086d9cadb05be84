"""One way for every listing command to print: a table, CSV or JSON lines.

Like sqlite-utils' commands, each listing takes the same output options:
a rich table for a person at a terminal (the default), ``--csv`` for a
spreadsheet, ``--json`` (one object per line) for a script or ``jq``. The
CSV is formula-safe (``congso.vocab.text.csv_field``): a name that begins
with ``=`` stays a name when the file is opened in Excel.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import Any, Callable, Iterable, Sequence

import click

from ..vocab import text

TABLE, CSV, JSON = "table", "csv", "json"


def output_options(fn: Callable) -> Callable:
    """Add ``--csv`` and ``--json`` to a listing command; it receives ``fmt`` ("table", "csv" or "json")."""
    fn = click.option("--json", "fmt", flag_value=JSON,
                      help="One JSON object per line instead of a table (for scripts, jq).")(fn)
    fn = click.option("--csv", "fmt", flag_value=CSV,
                      help="CSV with a header line instead of a table (for a spreadsheet).")(fn)
    fn = click.option("--table", "fmt", flag_value=TABLE, default=True, hidden=True)(fn)
    return fn


def _plain(value: Any) -> str:
    return "" if value is None else str(value)


def show(fmt: str, title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
         records: Iterable[dict] | None = None, table_rows: Iterable[Sequence[Any]] | None = None,
         empty: str | None = None, width: int = 120) -> None:
    """Print ``rows`` (a list of values per row, in ``columns`` order) as ``fmt``.

    ``records``: what ``--json`` prints instead of ``dict(zip(columns, row))``
    (a command whose JSON carries more than its table). ``table_rows``: the
    rows with rich markup (colours) for the table only. ``empty``: printed
    instead of an empty table.
    """
    rows = [list(r) for r in rows]
    if fmt == JSON:
        for record in (records if records is not None else (dict(zip(columns, r)) for r in rows)):
            click.echo(json.dumps(record, ensure_ascii=False, default=str))
        return
    if fmt == CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            # Only text can be a formula; a number (a negative one too) stays a number.
            writer.writerow([text.csv_field(v) if isinstance(v, str) else _plain(v) for v in row])
        sys.stdout.flush()
        return
    if not rows and empty is not None:
        click.echo(empty)
        return
    if table_rows is not None:
        print_table(title, columns, table_rows, width=width, markup=True)
    else:
        print_table(title, columns, rows, width=width)


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], width: int = 120,
                markup: bool = False) -> None:
    """A rich table, wide enough that Vietnamese names do not wrap mid-word.

    Values are shown as text (``markup=False``): a name holding ``[red]``
    or a control character cannot restyle or garble the terminal.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(text.printable(title)))
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_plain(v) if markup else escape(text.printable(_plain(v))) for v in row))
    Console(width=max(Console().width, width)).print(table)
