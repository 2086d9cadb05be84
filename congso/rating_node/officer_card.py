"""Who holds this kiosk's desk (nhận quầy), and what an officer's card tap does.

Pure logic, no reader and no MQTT: ``DeskDuty`` is fed the retained
``state/duty`` (``adopt``) and card taps (``tap``), and tells the kiosk who
holds the desk now.

A tap is decided here, on the kiosk, from the last ``state/duty`` it has
(kept on disk by the runtime, so it works after a reboot with no network):
the card's hash (``vocab.cards.card_hash``, the gateway's own formula)
among the ``cards`` of an officer whose
``desks`` include this desk. Their tap takes the desk when nobody or
somebody else holds it, and leaves it when they hold it. Any other card
is a citizen's: ignored.

The kiosk shows its own tap at once (offline too) and keeps it until the
gateway's view has caught up. A ``state/duty`` is adopted when

- no tap of ours is waiting, or
- its holder's ``since`` is not before our tap (our own take applied, or a
  console take that came after our tap), or
- our tap's event has been acked (the gateway applies a tap before it acks
  it, and publishes the state after), and this state came after the ack;
  when no state comes within ``SETTLE_S`` of the ack (the gateway refused
  the tap, or a console change came after it in time), the last state
  received is adopted: the gateway's word is final.

So a console take after a kiosk tap wins (a later ``since``); a kiosk tap
after a console take wins (the state showing the console's holder is older
than our tap, and the gateway applies the taps in time order, the same
rule: ``gateway.duty._set``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from ..protocol import messages
from ..vocab.cards import card_hash

SETTLE_S = 5.0  # after our tap's ack, how long to wait for the state that shows it


@dataclass(frozen=True)
class Tap:
    """What a card tap did: ``action`` take/leave, or None for a card that is not an officer's for this desk."""

    action: str | None
    staff_id: str | None = None
    name: str | None = None
    card_hash: str = ""


@dataclass
class _Pending:
    at: datetime
    event_id: str
    acked_at: float | None = None   # monotonic, when the kiosk saw the gateway's ack


@dataclass
class DeskDuty:
    site: str
    desk_id: str
    holder: dict | None = None          # {officer_id, officer_name, since, via} or None
    officers: dict[str, dict] = field(default_factory=dict)   # card hash -> {staff_id, name}
    version: int | None = None          # of the last state/duty received
    is_acked: Callable[[str], bool] = lambda event_id: False   # the gateway acked this event of ours
    _pending: _Pending | None = None
    _last_state: dict | None = None     # the last state/duty received (adopted or not)

    # -- inputs -------------------------------------------------------------------
    def adopt(self, payload: dict | None) -> bool:
        """A ``state/duty`` (None: cleared). Returns True when the holder shown changed."""
        if payload is None:
            return False  # a cleared topic says nothing about this desk: keep what we know
        self._last_state = payload
        self.version = payload.get("version")
        self.officers = {}
        for officer in payload.get("officers", []):
            if self.desk_id in officer.get("desks", []):
                for h in officer.get("cards", []):
                    self.officers[h.lower()] = {"staff_id": officer["staff_id"], "name": officer["name"]}
        theirs = payload.get("desks", {}).get(self.desk_id)
        if self._pending is not None and not self._caught_up(theirs):
            return False
        self._pending = None
        return self._set(theirs)

    def tap(self, uid: str) -> Tap:
        """What a tap of ``uid`` means here (nothing is changed: ``apply`` does that after the commit)."""
        h = card_hash(self.site, uid)
        who = self.officers.get(h)
        if who is None:
            return Tap(None, card_hash=h)
        holds = self.holder is not None and self.holder.get("officer_id") == who["staff_id"]
        return Tap("leave" if holds else "take", who["staff_id"], who["name"], h)

    def apply(self, tap: Tap, event: dict) -> None:
        """Our tap was committed to the outbox as ``event``: show it at once."""
        at = messages.parse_ts(event["ts"])
        self._pending = _Pending(at, event["event_id"])
        if tap.action == "take":
            self._set({"officer_id": tap.staff_id, "officer_name": tap.name, "since": event["ts"],
                       "via": "card:kiosk"})
        else:
            self._set(None)

    def check_ack(self, now: float) -> bool:
        """Let time pass: notice our tap's ack; adopt the last state once the gateway has settled."""
        p = self._pending
        if p is None:
            return False
        if p.acked_at is None:
            if self.is_acked(p.event_id):
                p.acked_at = now
            return False
        if now - p.acked_at >= SETTLE_S:
            self._pending = None
            if self._last_state is not None:
                return self._set(self._last_state.get("desks", {}).get(self.desk_id))
        return False

    # -- across a restart ---------------------------------------------------------------
    def snapshot(self) -> dict | None:
        """Our last tap, while the gateway has not caught up with it (kept on disk by the app)."""
        p = self._pending
        if p is None:
            return None
        return {"holder": self.holder, "at": p.at.isoformat(timespec="milliseconds"), "event_id": p.event_id}

    def restore(self, kept: dict | None) -> None:
        """After a reboot: our tap, if it is newer than the state kept on disk."""
        try:
            at = messages.parse_ts(kept["at"])
            holder, event_id = kept["holder"], kept["event_id"]
        except (TypeError, KeyError, ValueError):
            return
        theirs = (self._last_state or {}).get("desks", {}).get(self.desk_id)
        self._pending = _Pending(at, event_id)
        if self._caught_up(theirs) and self._last_state is not None:
            self._pending = None  # the state on disk already shows it, or what came after it
            return
        self._set(holder if isinstance(holder, dict) and holder.get("officer_id") else None)

    # -- outputs -------------------------------------------------------------------
    @property
    def officer_id(self) -> str | None:
        return self.holder.get("officer_id") if self.holder else None

    @property
    def officer_name(self) -> str | None:
        return self.holder.get("officer_name") if self.holder else None

    @property
    def pending(self) -> bool:
        return self._pending is not None

    # -- internals --------------------------------------------------------------------
    def _caught_up(self, theirs: dict | None) -> bool:
        p = self._pending
        if theirs is not None:
            try:
                if messages.parse_ts(theirs["since"]) >= p.at:
                    return True
            except (KeyError, ValueError):
                pass
        # Arrived after the ack: the gateway had applied our tap when it built this.
        return p.acked_at is not None or self.is_acked(p.event_id)

    def _set(self, holder: dict | None) -> bool:
        changed = (holder or {}).get("officer_id") != (self.holder or {}).get("officer_id")
        self.holder = dict(holder) if holder else None
        return changed
