"""``congso gateway check-db`` (is the database sound, what to do if not) and ``forget-node``."""

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


@click.command("forget-node")
@click.argument("node_id")
@click.pass_obj
def forget_node(settings, node_id) -> None:
    """Remove NODE_ID from the registry: a device retired, or given another role.

    \b
    The gateway takes a node's kind (door, TV, kiosk) from its first status
    and refuses a status that claims another kind, so a TV cannot make itself
    a door. After this, the node's next status registers it afresh. Its
    events stay.
    Example:
      congso gateway forget-node tv-1
    """
    from ..gateway import registry
    from .common import gateway_db

    from ..gateway import audit

    db = gateway_db(settings)
    if not registry.forget(db, node_id):
        raise click.ClickException(f"no node {node_id!r} in the registry (congso nodes)")
    audit.record_cli(db, "node.forget", node_id)
    click.echo(f"forgot {node_id}: its next status registers it again")


def register(main: click.Group, report: click.Group) -> None:
    main.commands["gateway"].add_command(check_db)
    main.commands["gateway"].add_command(forget_node)
