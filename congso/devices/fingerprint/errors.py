"""Typed errors of the fingerprint module, and what each confirmation code means."""

from __future__ import annotations

# Confirmation codes from the ZFM/AS608/R30x/R503 datasheets.
CONFIRMATION_CODES: dict[int, str] = {
    0x00: "OK",
    0x01: "error receiving the packet",
    0x02: "no finger on the sensor",
    0x03: "failed to capture the finger",
    0x04: "image too messy to make a template",
    0x05: "image has too few feature points to make a template",
    0x06: "poor image (too messy)",
    0x07: "poor image (too few feature points)",
    0x08: "finger does not match",
    0x09: "no matching finger in the library",
    0x0A: "failed to combine the two captures into a model",
    0x0B: "slot number outside the library",
    0x0C: "bad or empty template",
    0x0D: "error uploading the template",
    0x0E: "module cannot receive the data packets",
    0x0F: "error uploading the image",
    0x10: "failed to delete the template",
    0x11: "failed to clear the library",
    0x13: "wrong password",
    0x15: "no valid image in the buffer",
    0x18: "error writing flash",
    0x19: "undefined error",
    0x1A: "invalid register number",
    0x1B: "wrong register setting",
    0x1C: "wrong notepad page number",
    0x1D: "failed to operate the communication port",
    0x1F: "fingerprint library is full",
    0x20: "wrong module address",
    0x21: "password must be verified first",
    0x22: "template is empty",
    0x24: "fingerprint library is empty",
    0x26: "module timed out",
    0x27: "fingerprint already enrolled",
    0x29: "sensor hardware error",
    0xFC: "unsupported command",
    0xFD: "hardware error",
    0xFE: "command failed",
}

NO_FINGER = 0x02
NO_MATCH = 0x08
NOT_FOUND = 0x09
WRONG_PASSWORD = 0x13
LIBRARY_FULL = 0x1F
PASSWORD_REQUIRED = 0x21


def meaning(code: int) -> str:
    return CONFIRMATION_CODES.get(code, f"unknown confirmation code 0x{code:02X}")


class FingerprintError(Exception):
    """Anything that went wrong talking to the module."""


class ModuleTimeout(FingerprintError):
    """No complete reply before the deadline: the module is silent, unpowered or miswired."""


class BadFrame(FingerprintError):
    """Bytes that look like a packet but are not one: bad sum, length, address or PID."""


class PortError(FingerprintError):
    """The serial port cannot be opened or failed (module unplugged, wrong device)."""


class SensorError(FingerprintError):
    """The module answered with a confirmation code other than OK."""

    def __init__(self, code: int, instruction: str = "", slot: int | None = None):
        self.code = code
        self.slot = slot  # the slot concerned, e.g. where a finger is already enrolled
        self.meaning = meaning(code)
        self.instruction = instruction
        where = f"{instruction}: " if instruction else ""
        at = f" in slot {slot}" if slot is not None else ""
        super().__init__(f"{where}{self.meaning}{at} (code 0x{code:02X})")
