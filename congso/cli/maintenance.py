"""``congso gateway check-db``: is the gateway's database sound, and what to do when it is not."""

from __future__ import annotations

import sys

import click


@click.command("check-db")
@click.option("--file", "path", type=click.Path(dir_okay=False), help="Check this file (default: the gateway database, <data dir>/gateway.sqlite).")
@click.pass_obj
def check_db(settings, path) -> None:
    """Run SQLite's integrity check on the gateway database; say what to do if it fails.

    \b
    Read-only: checking never changes the file, and it may run while the
    gateway runs. Exit code 0 when the file is sound, 1 when it is damaged
    or missing. The gateway runs the same check when it starts.
    Examples:
      congso gateway check-db
      congso gateway check-db --file /media/usb/gateway-ky-chau-20261201-023000.sqlite
    """
    from pathlib import Path

    from ..gateway.service import db_path
    from ..protocol import dbcheck

    target = Path(path) if path else db_path(settings)
    if not target.is_file():
        raise click.ClickException(f"no database at {target}: is [data] dir (CONGSO_DATA_DIR) right?")
    problems = dbcheck.check(target)
    if problems:
        click.echo(f"integrity check FAILED for {target}:", err=True)
        for problem in problems[:10]:
            click.echo(f"  {problem}", err=True)
        click.echo(dbcheck.gateway_advice(target, problems), err=True)
        sys.exit(1)
    click.echo(f"ok: {target} passed SQLite's integrity check")


def register(main: click.Group, report: click.Group) -> None:
    main.commands["gateway"].add_command(check_db)
