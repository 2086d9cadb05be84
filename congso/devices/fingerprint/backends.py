"""Choosing the module from settings, and checking it for ``congso selftest``.

``[fingerprint] backend``: ``serial`` (a real module on ``port``),
``emulator`` (the software module on a pty, started in this process: the
demo, or trying a node on a laptop) or ``none`` (no module fitted).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .. import CheckResult
from .driver import FingerprintModule
from .emulator import FingerprintEmulator
from .errors import BadFrame, ModuleTimeout, PortError, SensorError

log = logging.getLogger(__name__)

BACKENDS = ("serial", "emulator", "none")


class FingerprintBackendError(ValueError):
    pass


def connect(settings) -> tuple[FingerprintModule | None, FingerprintEmulator | None]:
    """The module the settings name (not yet opened), and the emulator behind it if any."""
    backend = settings.fingerprint.backend
    if backend not in BACKENDS:
        raise FingerprintBackendError(
            f"[fingerprint] backend must be one of {', '.join(BACKENDS)}, got {backend!r}"
        )
    if backend == "none":
        return None, None
    if backend == "emulator":
        emulator = FingerprintEmulator(password=settings.fingerprint.password, address=settings.fingerprint.address)
        port = emulator.start()
        log.info("fingerprint: emulated module on %s", port)
        return FingerprintModule.from_settings(settings, port=port), emulator
    return FingerprintModule.from_settings(settings), None


def serial_console_on(port: str, cmdline: str | None = None) -> bool:
    """True when the kernel's console is on the UART the module is wired to."""
    if cmdline is None:
        try:
            cmdline = Path("/proc/cmdline").read_text()
        except OSError:
            return False
    if not port.startswith("/dev/"):
        return False
    uart_names = {"serial0", "ttyAMA0", "ttyS0"} if Path(port).name in ("serial0", "ttyAMA0", "ttyS0") else {Path(port).name}
    return any(word.startswith("console=") and word.split("=", 1)[1].split(",")[0] in uart_names for word in cmdline.split())


UART_FIX = ("the GPIO 14/15 UART is /dev/ttyAMA0: on a Pi 3/4 with enable_uart=1 and dtoverlay=disable-bt, "
            "on a Pi 5 with dtparam=uart0=on, in /boot/firmware/config.txt (sudo congso install attendance "
            "writes both); and the user in group dialout")


def pi5_port_problem(port: str, model: str) -> str:
    """On a Pi 5, /dev/serial0 is the debug connector's UART (ttyAMA10), not GPIO 14/15."""
    if "Raspberry Pi 5" not in model or not port.startswith("/dev/"):
        return ""
    name = Path(port).name
    target = Path(os.path.realpath(port)).name if os.path.islink(port) else name
    if name == "serial0" or target == "ttyAMA10":
        return f"{port} is the debug connector's UART on a Pi 5, not the one on GPIO 14/15"
    return ""


def _model(path: str = "/proc/device-tree/model") -> str:
    try:
        return Path(path).read_text(errors="replace").strip("\0\n ")
    except OSError:
        return ""


def check(settings) -> list[CheckResult]:
    """Open the configured module for real and read its parameters."""
    fp = settings.fingerprint
    name = "fingerprint module"
    if fp.backend == "none":
        return [CheckResult(name, True, "not fitted ([fingerprint] backend = none)")]
    results = []
    wrong_uart = pi5_port_problem(fp.port, _model()) if fp.backend == "serial" else ""
    if wrong_uart:
        results.append(CheckResult("fingerprint port", False, wrong_uart,
                                   '[fingerprint] port = "/dev/ttyAMA0" and dtparam=uart0=on in /boot/firmware/config.txt'))
    if fp.backend == "serial" and serial_console_on(fp.port):
        results.append(CheckResult(
            "serial console", False, f"the kernel console is on {fp.port}: it talks over the module",
            "sudo raspi-config nonint do_serial_cons 1 (keeps the UART enabled), then reboot",
        ))
    try:
        module, emulator = connect(settings)
    except FingerprintBackendError as e:
        return results + [CheckResult(name, False, str(e), "set [fingerprint] backend to serial, emulator or none")]
    try:
        params = module.open()
        used = module.template_count()
        ring = "ring LED" if module.aura_led(0x04, 0, 0x01, 0) else "no ring LED"
        detail = (
            f"{'emulated, ' if emulator else ''}{module.port}: library {params.library_size} ({used} used), "
            f"packet {params.packet_size} B, {params.baud} baud, security {params.security_level}, {ring}"
        )
        results.append(CheckResult(name, True, detail))
    except PortError as e:
        results.append(CheckResult(name, False, str(e),
            f"check [fingerprint] port ({fp.port}); {UART_FIX}"))
    except ModuleTimeout:
        results.append(CheckResult(name, False, f"no answer on {fp.port} within {fp.timeout_s} s",
            "check the wiring (module TX to Pi RX, RX to TX), its 3.3 V supply, and [fingerprint] baud "
            f"({fp.baud}; R30x/AS608/R503 ship at 57600)"))
    except BadFrame as e:
        results.append(CheckResult(name, False, f"garbled replies: {e}",
            f"wrong baud rate ([fingerprint] baud = {fp.baud}) or noise on a long cable"))
    except SensorError as e:
        fix = ("set [fingerprint] password to the module's password" if e.code in (0x13, 0x21)
               else "power-cycle the module; replace it if this persists")
        results.append(CheckResult(name, False, str(e), fix))
    finally:
        module.close()
        if emulator:
            emulator.stop()
    return results
