"""Devices: one small class per device over a pluggable backend.

Each device has a real backend and a simulated twin, chosen by settings,
so the same node code runs on a Pi, in ``congso demo`` and in the tests:

========================  ================================  ===============================
module                    real                              simulated
========================  ================================  ===============================
``fingerprint``           R30x/AS608/R503 on a UART          ``fingerprint.emulator``: the
                          (pyserial)                         module's protocol on a pty
``cardreader``            any PC/SC reader through pcscd     ``virtualcard``: a card in
                          (pyscard)                          pcscd's vpcd virtual reader
``gpio``                  gpiozero on the Pi's pins          gpiozero's ``MockFactory``
``display``               pygame on kmsdrm/fbcon/desktop     SDL's ``dummy`` driver
========================  ================================  ===============================

Every device reports one of the states below, which nodes put in their
health heartbeat (``devices: {name: state}``, see the contract).
"""

OK = "ok"            # present and answering
MISSING = "missing"  # not found (unplugged, not wired, daemon absent)
ERROR = "error"      # present but failing (bad replies, I/O errors)

STATES = (OK, MISSING, ERROR)


from dataclasses import dataclass


@dataclass(frozen=True)
class CheckResult:
    """One line of ``congso selftest``: what was checked, and the fix if it failed."""

    name: str        # e.g. "fingerprint module", "pcscd"
    ok: bool
    detail: str      # what was found ("R503, library 200, 57600 baud")
    fix: str = ""    # what to do about a failure, for the technician
