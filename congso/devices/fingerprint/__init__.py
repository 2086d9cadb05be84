"""Fingerprint modules of the R30x / ZFM / AS608 / R503 family over a UART.

- ``codec``: the packet format as pure functions (encode, checksum).
- ``parser``: an incremental parser that resynchronises on ``EF 01``.
- ``errors``: typed errors and the meaning of every confirmation code.
- ``driver``: ``FingerprintModule``, every command and the operations a door
  needs (identify, enroll, delete, export/import a template), each command
  under a monotonic deadline.
- ``emulator``: a software module on a pseudo-terminal speaking the same
  protocol, with fingers to place and lift and faults on demand.
"""

from .errors import BadFrame, FingerprintError, ModuleTimeout, PortError, SensorError
from .driver import FingerprintModule, Match, SystemParameters

__all__ = [
    "BadFrame",
    "FingerprintError",
    "FingerprintModule",
    "Match",
    "ModuleTimeout",
    "PortError",
    "SensorError",
    "SystemParameters",
]
