"""The staff list as the door sees it: who a card UID or a finger slot belongs to.

Built from the door's own retained ``state/roster/<node>/<part>`` parts
(kept on disk by the runtime, so a door that boots without a network still
knows everybody): ``RosterParts`` collects them and gives a ``Roster`` once
every part of one split is there. A gateway of the plain contract sends the
whole roster on ``state/roster``; that still works. Each ``Roster`` is
immutable once built: a new roster replaces the old one in a single
assignment, so the credential handler never sees half an update.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..protocol import messages
from ..protocol.statecache import write_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Person:
    staff_id: str
    name: str
    department: str | None


def normalise_uid(uid: str) -> str:
    """Card UIDs are compared as upper-case hex without separators."""
    return uid.replace(":", "").replace(" ", "").upper()


class Roster:
    def __init__(self, payload: dict | None, node_id: str):
        self.version = (payload or {}).get("version")
        self.node_id = node_id
        self.staff_count = len((payload or {}).get("staff", []))
        self._cards: dict[str, Person] = {}
        self._slots: dict[int, Person] = {}
        for entry in (payload or {}).get("staff", []):
            person = Person(entry["staff_id"], entry.get("name", ""), entry.get("department"))
            for uid in entry.get("cards", []):
                self._cards[normalise_uid(uid)] = person
            # Slots are per door: the same finger sits in different slots of
            # different modules, so only this node's list counts here.
            for slot in entry.get("fingers", {}).get(node_id, []):
                self._slots[int(slot)] = person

    def __len__(self) -> int:
        return len({p.staff_id for p in (*self._cards.values(), *self._slots.values())})

    @property
    def loaded(self) -> bool:
        return self.version is not None

    def by_card(self, uid: str) -> Person | None:
        return self._cards.get(normalise_uid(uid))

    def by_slot(self, slot: int) -> Person | None:
        return self._slots.get(int(slot))

    def with_slot(self, slot: int, staff_id: str) -> "Roster":
        """A copy that also knows ``slot`` (just enrolled here, before the gateway's roster says so)."""
        copy = Roster(None, self.node_id)
        copy.version, copy._cards, copy._slots = self.version, dict(self._cards), dict(self._slots)
        copy.staff_count = self.staff_count
        known = next((p for p in (*self._cards.values(), *self._slots.values()) if p.staff_id == staff_id), None)
        copy._slots[int(slot)] = known or Person(staff_id, "", None)
        return copy

    def slots(self) -> dict[int, str]:
        return {slot: p.staff_id for slot, p in self._slots.items()}

    @classmethod
    def from_parts(cls, parts: list[dict], node_id: str) -> "Roster":
        """The roster of every part of one split of this door's roster."""
        roster = cls(None, node_id)
        # Each part's version only grows, so their sum grows with any change.
        roster.version = sum(p["version"] for p in parts)
        roster.staff_count = parts[0]["staff_count"]
        for part in parts:
            for entry in part["staff"]:
                person = Person(entry["staff_id"], entry.get("name", ""), entry.get("department"))
                for uid in entry.get("cards", []):
                    roster._cards[normalise_uid(uid)] = person
                for slot in entry.get("fingers", []):  # this door's slots only
                    roster._slots[int(slot)] = person
        return roster


class RosterParts:
    """The parts of this door's roster received so far.

    ``keep``: a file where the parts of the last whole split are written, so
    a door whose power was cut while a growing split came in (its kept parts
    now of two splits) still boots with the last whole roster.
    """

    def __init__(self, node_id: str, keep: Path | None = None):
        self.node_id = node_id
        self.keep = keep
        self._parts: dict[int, dict] = {}

    def add(self, payload: dict) -> Roster | None:
        """Keep one part; the whole roster when this completes a split, else None (the last one stays in use)."""
        if payload.get("node_id") != self.node_id:
            return None  # another door's (never sent here by the broker's ACL)
        self._parts[payload["part"]] = payload
        whole = self._whole()
        if whole is None:
            return None
        if self.keep is not None:
            try:
                write_atomic(self.keep, messages.dumps({"parts": whole}))
            except OSError as e:  # a full disk: the roster still works from memory
                log.error("could not keep the whole roster in %s: %s", self.keep, e)
        return Roster.from_parts(whole, self.node_id)

    def complete(self) -> Roster | None:
        whole = self._whole()
        return Roster.from_parts(whole, self.node_id) if whole is not None else None

    def _whole(self) -> list[dict] | None:
        # While the gateway grows the split (more staff), parts of the old and
        # the new split are mixed for a moment: use a split only when whole.
        for n in sorted({p["parts"] for p in self._parts.values()}, reverse=True):
            if all(k in self._parts and self._parts[k]["parts"] == n for k in range(n)):
                return [self._parts[k] for k in range(n)]
        return None


def _kept_whole(keep: Path | None, node_id: str) -> Roster | None:
    if keep is None or not keep.is_file():
        return None
    try:
        parts = [messages.validate("door_roster", p) for p in json.loads(keep.read_bytes())["parts"]]
        if parts and all(p["node_id"] == node_id for p in parts):
            return Roster.from_parts(parts, node_id)
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.error("ignoring the kept roster %s: %s", keep, e)
    return None


def from_cache(cached: dict[str, dict], node_id: str, keep: Path | None = None) -> tuple[Roster, RosterParts]:
    """The roster a door boots with from its kept state: its own parts (or the
    last whole split of them), else a whole contract roster."""
    parts = RosterParts(node_id)
    roster = None
    for payload in cached.values():
        if "part" in payload and "parts" in payload:
            roster = parts.add(payload) or roster
    parts.keep = keep
    roster = roster or _kept_whole(keep, node_id)
    if roster is None:
        legacy = cached.get("roster")
        roster = Roster(None if legacy is None or legacy.get("per_door") else legacy, node_id)
    return roster, parts
