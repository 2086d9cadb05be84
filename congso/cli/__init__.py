"""The ``congso`` command: a thin shell over the library.

Every command parses its arguments, makes one call into the library (the
same call a web console route makes) and prints. Commands live in one
module per area and are added to ``main`` by the explicit list ``AREAS``
below. Every command reads the same settings (``--config`` or
``CONGSO_CONFIG``, then ``CONGSO_<SECTION>_<KEY>`` variables); see the
Settings section of the README.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from .. import __version__
from ..protocol import settings as settings_mod

log = logging.getLogger("congso")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="CONGSO_CONFIG",
    help="TOML settings file (default: none; built-in defaults plus CONGSO_* variables).",
)
@click.version_option(__version__, prog_name="congso")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """congso: smart-office firmware for a commune People's Committee.

    Doors (fingerprint and card), waiting-hall TVs and rating kiosks report
    over MQTT to one gateway that keeps the office's data in SQLite.

    \b
    Quick start on one machine:
      make demo                      the whole office on one machine
    On a Raspberry Pi:
      congso install ROLE            gateway, attendance, signage or rating
      congso selftest --role ROLE    check this node's devices, with fixes
    At the gateway:
      congso staff|card|enroll                who may enter, and how
      congso leave|punch|holiday              leave, corrections, days off (timesheet)
      congso dossier|calendar|announce        what the hall TVs show
      congso desk open|close|take|leave       tie votes to an officer (one citizen, or the desk)
      congso report attendance|ratings|kpi|plays  timesheets, satisfaction, figures, proof of play
      congso nodes; congso node screenshot tv-1    look after the devices

    \b
    Settings: --config FILE or CONGSO_CONFIG, then CONGSO_<SECTION>_<KEY>
    variables (the Settings section of the README lists them all).
    Every listing takes --csv or --json; every command explains itself
    with --help, e.g.  congso staff add --help
    """
    try:
        ctx.obj = settings_mod.load(config_path)
    except settings_mod.SettingsError as e:
        raise click.UsageError(str(e)) from None
    _setup_logging(ctx.obj.log.level)
    for name in ctx.obj.ignored_env:
        log.warning("ignoring %s: no such setting (see Settings in the README)", name)


# Groups that several areas add commands to; an area adds its own groups itself.
@main.group()
def gateway() -> None:
    """The gateway: stores every event and tells the nodes what it has.

    \b
    Examples:
      congso gateway run
    """


@main.group()
def report() -> None:
    """Reports for the head of office: timesheets and satisfaction, as CSV or XLSX.

    \b
    Examples:
      congso report attendance --month 2026-11 --xlsx cham-cong-11-2026.xlsx
      congso report ratings --from 2026-11-01 --to 2026-11-30 --xlsx hai-long-t11.xlsx
      congso report kpi --month 2026-11 --xlsx chi-tieu-11-2026.xlsx
    """


# -- the areas -------------------------------------------------------------------------
# One module per area, each with ``register(main, report)`` that adds its
# commands (the gateway's subcommands go to ``main.commands["gateway"]``).
# A new area is a new module and one entry here.
AREAS = (
    "service",     # gateway run, events export
    "broker",      # broker config|central|check-db, province
    "devices",     # fingerprint, emulate, selftest
    "tools",       # simulate, demo
    "attendance",  # attendance run (the door)
    "staff",       # staff, card, enroll
    "office",      # leave, punch, holiday (the timesheet's days)
    "signage",     # signage run, dossier, calendar, announce
    "rating",      # rating run, desk
    "reports",     # report attendance|ratings|kpi|plays
    "nodes",       # nodes, node, status
    "install",     # install, uninstall
    "backup",      # gateway backup|restore
    "maintenance", # gateway check-db
    "web",         # web run, web user|token|audit (the office console)
)


def _register_areas() -> None:
    for name in AREAS:
        importlib.import_module(f"{__name__}.{name}").register(main, report)


_register_areas()

if __name__ == "__main__":
    main()
