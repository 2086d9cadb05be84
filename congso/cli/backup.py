"""``congso gateway backup`` and ``congso gateway restore``: the office's data, kept twice."""

from __future__ import annotations

import click


@click.command("backup")
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Write here (default: [backup] dir, e.g. a USB stick's mount point).")
@click.option("--keep", type=click.IntRange(min=1), help="Keep this many copies there, newest first (default: [backup] keep).")
@click.pass_obj
def backup(settings, directory, keep) -> None:
    """Copy the gateway database while it runs, check the copy, keep the newest N.

    \b
    The copy is one consistent moment of the database (SQLite's online
    backup), named gateway-<site>-<YYYYMMDD-HHMMSS>.sqlite in office time.
    The congso-backup.timer runs this every night at 02:30.
    \b
    Examples:
      congso gateway backup                          to [backup] dir
      congso gateway backup --dir /media/usb --keep 30
    """
    from ..gateway.backup import BackupError, backup as do_backup

    try:
        done = do_backup(settings, directory, keep)
    except BackupError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"backup written: {done.copy.describe()}")
    for old in done.removed:
        click.echo(f"removed old backup {old}")
    if done.on_data_card:
        click.echo("warning: the backup is on the same SD card as the database; set [backup] dir to a USB stick "
                   "(docs/operations.md, Backup and restore)", err=True)


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_obj
def restore(settings, file) -> None:
    """Put the backup FILE in place of the gateway database (stop the gateway first).

    \b
    FILE is checked first (SQLite integrity, a congso gateway database, a
    schema this congso knows); the database it replaces is kept beside it
    as gateway.sqlite.replaced-<time>. When the gateway starts again it
    asks every node for the events it lacks: the nodes keep acked events
    for [outbox] keep_acked_days (35), so nothing they still keep is lost.
    \b
      sudo systemctl stop congso-gateway
      sudo -u congso congso --config /etc/congso/congso.toml gateway restore /media/usb/gateway-ky-chau-20261201-023000.sqlite
      sudo systemctl start congso-gateway
    """
    from ..gateway.backup import BackupError, restore as do_restore

    try:
        done = do_restore(settings, file)
    except BackupError as e:
        raise click.ClickException(str(e)) from None
    from ..gateway import audit
    from .common import gateway_db

    db = gateway_db(settings)
    audit.record_cli(db, "gateway.restore", file, {"replaced": str(done.replaced) if done.replaced else None})
    db.conn.close()
    if done.replaced:
        click.echo(f"the database it replaces is kept as {done.replaced}")
    click.echo(f"restored {file}: {done.copy.describe()}")
    click.echo("start the gateway now (sudo systemctl start congso-gateway): it asks every node for the events since this copy")


def register(main: click.Group, report: click.Group) -> None:
    gateway = main.commands["gateway"]
    gateway.add_command(backup)
    gateway.add_command(restore)
