"""The staff list as the door sees it: who a card UID or a finger slot belongs to.

Built from the retained ``state/roster`` (kept on disk by the runtime, so a
door that boots without a network still knows everybody). Each ``Roster``
is immutable once built: a new roster replaces the old one in a single
assignment, so the credential handler never sees half an update.
"""

from __future__ import annotations

from dataclasses import dataclass


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
        known = next((p for p in (*self._cards.values(), *self._slots.values()) if p.staff_id == staff_id), None)
        copy._slots[int(slot)] = known or Person(staff_id, "", None)
        return copy

    def slots(self) -> dict[int, str]:
        return {slot: p.staff_id for slot, p in self._slots.items()}
