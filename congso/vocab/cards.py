"""A staff card as it travels to the hall's nodes: a hash, never its UID.

The gateway lists the officers' cards in ``state/duty`` this way, and the
kiosk hashes each UID it reads the same way to tell a staff card from a
citizen's. ``state/`` is readable by every node, the TVs too, so the UIDs
themselves stay at the gateway and at the doors. Pure: the standard library only.
"""

from __future__ import annotations

import hashlib


def card_hash(site: str, uid: str) -> str:
    """sha256("congso-card:<site>:<UID hex upper>") as hex."""
    return hashlib.sha256(f"congso-card:{site}:{uid.strip().upper()}".encode()).hexdigest()
