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
            log.exception("the %s check failed", device)
            results.append(CheckResult(device, False, f"the check itself failed: {type(e).__name__}: {e}",
                                       "run with CONGSO_LOG_LEVEL=DEBUG and report it"))
    return results
