"""The door node: ``congso attendance run``.

Who may enter (staff, cards, fingers, holidays) is in ``cli/staff.py``;
the timesheet report in ``cli/reports.py``.
"""

from __future__ import annotations

import click


# -- the door -----------------------------------------------------------------------
@click.group("attendance")
def attendance() -> None:
    """The door node: fingerprint and card check-in.

    \b
    Example:
      CONGSO_NODE_ID=door-1 congso attendance run
    """


@attendance.command("run")
@click.pass_obj
def attendance_run(settings) -> None:
    """Run the door until SIGTERM or Ctrl-C.

    \b
    Waits for a finger ([fingerprint] backend/port) and a card ([card]
    reader) at the same time; either may be missing. Each scan is stored
    in the outbox first, then the door answers: green + short beep + the
    strike relay for known staff, red + long beep otherwise, a short beep
    only for the same person again within [attendance] repeat_window_s.
    Prints one 'feedback ...' line per scan.

    \b
    Try it on a laptop with the emulated module (type 'place NV001', 'lift'):
      CONGSO_NODE_ID=door-1 CONGSO_FINGERPRINT_BACKEND=emulator \\
      CONGSO_CARD_BACKEND=none GPIOZERO_PIN_FACTORY=mock congso attendance run
    """
    from ..attendance_node.node import run

    try:
        run(settings)
    except ValueError as e:
        raise click.ClickException(str(e)) from None


def register(main: click.Group, report: click.Group) -> None:
    main.add_command(attendance)
