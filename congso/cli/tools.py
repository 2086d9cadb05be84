"""Tools for demos, tests and benchmarks: ``congso simulate``, ``congso demo``."""

from __future__ import annotations

import sys
from pathlib import Path

import click


# -- simulate -------------------------------------------------------------------
@click.group()
def simulate() -> None:
    """Simulated nodes for demos, tests and benchmarks.

    \b
    Example:
      CONGSO_NODE_ID=door-1 congso simulate node --count 100 --rate 10 --exit-when-drained
    """


@simulate.command("node")
@click.option("--kind", type=click.Choice(["attendance", "rating"]), default="attendance", show_default=True,
              help="A door's check-ins or a kiosk's votes.")
@click.option("--count", type=click.IntRange(min=0), help="Events to make (default: keep going until stopped; 0: none, only deliver what the outbox holds).")
@click.option("--rate", default=1.0, show_default=True, help="Events per second (0: as fast as possible).")
@click.option("--exit-when-drained", is_flag=True, help="Exit once COUNT events are made and all acked.")
@click.option("--seed", type=int, help="Random seed, for repeatable runs.")
@click.pass_obj
def simulate_node(settings, kind, count, rate, exit_when_drained, seed) -> None:
    """Run a node (id from CONGSO_NODE_ID) that makes events like a busy door or kiosk.

    Prints 'committed <seq> <event_id>' after each event is in the outbox.

    \b
    Examples:
      CONGSO_NODE_ID=door-1 CONGSO_MQTT_PASSWORD=... congso simulate node --count 100 --rate 10 --exit-when-drained
      CONGSO_NODE_ID=kiosk-1 congso simulate node --kind rating --seed 7
    """
    from ..tools.simulate import run_cli

    try:
        sys.exit(run_cli(settings, kind, count, rate, exit_when_drained, seed))
    except ValueError as e:
        raise click.ClickException(str(e)) from None


# -- demo -----------------------------------------------------------------------
@click.command()
@click.option("--out", "out_dir", default="demo-out", show_default=True, type=click.Path(file_okay=False), help="Where the demo keeps its broker config, databases and logs.")
@click.option("--duration", default=0.0, help="Stop after this many seconds (0: run until Ctrl-C).")
@click.option("--pace", default=2.5, show_default=True, help="Seconds between two scenes of the working morning.")
@click.pass_obj
def demo(settings, out_dir, duration, pace) -> None:
    """The whole office on one machine, playing a working morning, with a live view.

    \b
    A broker with generated credentials; the gateway with a seeded commune
    (staff, cards, fingers, this week's calendar, dossiers, announcements);
    the door on the fingerprint-module emulator and, where pcscd and vpcd
    work, the virtual card reader; the hall TV; the rating kiosk. Staff
    check in, dossiers move, citizens rate. Without a display the screens
    are saved as OUT/tv-1/screen.png and OUT/kiosk-1/screen.png.
    The office console serves http://127.0.0.1:8080 ([web] port; a free
    port when that one is taken) with one account per role (admin, clerk,
    officer, viewer), each with a password made for this run and printed.
    Ctrl-C stops everything cleanly.

    \b
    Examples:
      congso demo
      congso demo --out /tmp/demo --duration 120 --pace 1
    """
    from ..tools.demo import run_demo

    sys.exit(run_demo(settings, Path(out_dir), duration, pace))


def register(main: click.Group, report: click.Group) -> None:
    main.add_command(simulate)
    main.add_command(demo)
