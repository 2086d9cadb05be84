"""``congso selftest``: check every configured device for real, with a fix for each failure.

Each device module has a ``check(settings)`` returning ``CheckResult`` lines;
this module picks the ones a role uses and makes sure no check can crash
the whole run (a technician needs the other lines too).
"""

from __future__ import annotations

import importlib
import logging

from . import CheckResult

log = logging.getLogger(__name__)

# device -> module with check(settings)
CHECKS = {
    "fingerprint": "congso.devices.fingerprint.backends",
    "card": "congso.devices.cardreader",
    "gpio": "congso.devices.gpio",
    "display": "congso.devices.display",
    "cec": "congso.signage_node.cec",
}
ROLES = {
    "attendance": ("fingerprint", "card", "gpio"),
    "signage": ("display", "cec"),
    "rating": ("display", "gpio"),
}


# A library a device needs, missing from the Python congso runs on: what
# installs it where congso's venv sees it (/opt/congso/venv sees the system's
# packages). Debian's pyscard and pygame are built for the Pi; pip's would
# build from source (pyscard) or lack KMSDRM (pygame).
LIBRARY_FIXES = {
    "smartcard": "sudo apt install python3-pyscard (Debian's pyscard; congso's venv sees it)",
    "pygame": "sudo apt install python3-pygame (Debian's pygame, with KMSDRM; congso's venv sees it)",
    "lgpio": "sudo /opt/congso/venv/bin/pip install lgpio (Debian 12 has no python3-lgpio)",
    "gpiozero": "sudo /opt/congso/venv/bin/pip install gpiozero",
    "serial": "sudo /opt/congso/venv/bin/pip install pyserial",
}


def devices_for(role: str | None) -> tuple[str, ...]:
    if role is None:
        return tuple(CHECKS)
    try:
        return ROLES[role]
    except KeyError:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}") from None


def run(settings, role: str | None = None) -> list[CheckResult]:
    results: list[CheckResult] = []
    for device in devices_for(role):
        try:
            results += importlib.import_module(CHECKS[device]).check(settings)
        except Exception as e:  # a check must never hide the others
            library = (getattr(e, "name", None) or "").split(".")[0] if isinstance(e, ModuleNotFoundError) else ""
            if library in LIBRARY_FIXES:
                results.append(CheckResult(device, False, f"the Python library {library} is not installed",
                                           LIBRARY_FIXES[library] + "; or sudo congso install ROLE"))
                continue
            log.exception("the %s check failed", device)
            results.append(CheckResult(device, False, f"the check itself failed: {type(e).__name__}: {e}",
                                       "run with CONGSO_LOG_LEVEL=DEBUG and report it"))
    return results
