"""The gateway service and its stored events: ``congso gateway run``, ``congso events export``."""

from __future__ import annotations

import click

from .common import gateway_db


@click.command("run")
@click.pass_obj
def gateway_run(settings) -> None:
    """Run the gateway until SIGTERM or Ctrl-C.

    \b
    Connects as user 'gateway' (CONGSO_MQTT_USERNAME / CONGSO_MQTT_PASSWORD),
    keeps its database in $CONGSO_DATA_DIR/gateway.sqlite and acks every
    event after it is committed.
    Example:
      CONGSO_DATA_DIR=/var/lib/congso CONGSO_MQTT_PASSWORD=... congso gateway run
    """
    from ..gateway.service import Gateway

    gw = Gateway(settings)
    gw.install_signal_handlers()
    gw.run()


@click.group()
def events() -> None:
    """Stored attendance and rating events.

    \b
    Example:
      congso events export --format csv -o events.csv
    """


@events.command("export")
@click.option("--kind", type=click.Choice(["attendance", "rating"]), help="Only this kind (default: both).")
@click.option("--from", "day_from", metavar="YYYY-MM-DD", help="First day, inclusive, in the office's time zone.")
@click.option("--to", "day_to", metavar="YYYY-MM-DD", help="Last day, inclusive.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), required=True,
              help="One JSON object per line, or CSV with a header (formula-safe for Excel).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file instead of standard output.")
@click.pass_obj
def events_export(settings, kind, day_from, day_to, fmt, output) -> None:
    """Write every stored event, one per line or row, with its event_id.

    \b
    Examples:
      congso events export --format csv --from 2026-11-01 --to 2026-11-30 -o nov.csv
      congso events export --kind rating --format jsonl | jq .level
    """
    from ..gateway import export

    try:
        day_from = export.parse_day(day_from, "--from")
        day_to = export.parse_day(day_to, "--to")
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    n = export.export(gateway_db(settings, readonly=True), output or "-", fmt, kind, day_from, day_to)
    click.echo(f"exported {n} events", err=True)


def register(main: click.Group, report: click.Group) -> None:
    main.commands["gateway"].add_command(gateway_run)
    main.add_command(events)
