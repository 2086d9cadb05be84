"""Ask one node to do something and wait for its answer (``congso node ...``, the console).

The command goes through the gateway's queue (``commands.queue``); the
running gateway sends it and stores the node's reply, which
``commands.wait_reply`` polls for. Errors are ``commands.CommandError``
(the node refused, or no answer in time, saying why) or ``ValueError``
(a bad node id or command).
"""

from __future__ import annotations

import base64
import binascii

import sqlite_utils

from ..protocol import clock
from . import commands

# How long each command usually needs (seconds): a screenshot is encoded
# and sent as base64, so it gets longer than a blink.
DEFAULT_TIMEOUT_S = {"identify": 15.0, "reload": 15.0, "screenshot": 20.0}
ANY_COMMAND_TIMEOUT_S = 30.0


class RemoteError(Exception):
    """A command that failed; the message names the command and the node.

    ``status`` says how (``commands``): "refused" (the node answered with an
    error), "expired" (never delivered), "no reply" (sent, no answer in
    time), or "failed" (a bad node id, command or answer).
    """

    def __init__(self, message: str, status: str = "failed"):
        super().__init__(message)
        self.status = status


def ask(db: sqlite_utils.Database, node_id: str, cmd: str, args: dict | None = None,
        timeout_s: float | None = None, tz: str = clock.DEFAULT_ZONE) -> dict:
    """Queue ``cmd`` for ``node_id`` and wait for its result; raise RemoteError saying what went wrong."""
    if args is not None and not isinstance(args, dict):
        raise RemoteError("the arguments must be a JSON object")
    timeout_s = timeout_s if timeout_s is not None else DEFAULT_TIMEOUT_S.get(cmd, ANY_COMMAND_TIMEOUT_S)
    try:
        cmd_id = commands.queue(db, node_id, cmd, args or {}, tz=tz)
        return commands.wait_reply(db, cmd_id, timeout_s)
    except commands.CommandError as e:
        raise RemoteError(f"{cmd} on {node_id}: {e}", e.status) from None
    except ValueError as e:
        raise RemoteError(str(e)) from None


def screenshot(db: sqlite_utils.Database, node_id: str, max_width: int | None = None,
               timeout_s: float | None = None, tz: str = clock.DEFAULT_ZONE) -> bytes:
    """The PNG that the screen of ``node_id`` (a TV or a kiosk) shows now."""
    result = ask(db, node_id, "screenshot", {"max_width": max_width} if max_width else {}, timeout_s, tz)
    data = result.get("png_base64")
    if not isinstance(data, str):
        raise RemoteError(f"{node_id} answered without a picture: {sorted(result)}")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RemoteError(f"{node_id} sent a picture that is not base64") from None
