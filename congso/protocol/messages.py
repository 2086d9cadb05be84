"""Message models of wire contract v1 and their validation, in one place.

Each message kind has a schema: a mapping from field name to a ``Field``.
``decode`` turns a raw MQTT payload into a clean dict or raises
``MessageError`` naming the offending field; ``encode`` validates before it
serialises, so a node cannot put a message on the wire that its own gateway
would reject.

Rules from the contract, applied to every kind:

- the payload is UTF-8 JSON, an object, at most 64 KiB (``reply``: 4 MiB);
- ``"v": 1`` is required;
- unknown fields are ignored (dropped from the decoded dict);
- a missing required field or a wrong type is an error. ``bool`` is never
  accepted where a number is expected (JSON ``true`` is not ``1``).
- text is normalised to Unicode NFC, so Vietnamese typed on different
  keyboards ("Nguyễn" precomposed or with combining marks) compares equal.
"""

from __future__ import annotations

import json
import unicodedata
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import topics

VERSION = 1
MAX_PAYLOAD = 64 * 1024
MAX_REPLY_PAYLOAD = 4 * 1024 * 1024

NODE_KINDS = ("attendance", "signage", "rating", "gateway")
NODE_STATES = ("online", "offline")
DEVICE_STATES = ("ok", "missing", "error")
ATTENDANCE_METHODS = ("card", "finger")
RATING_LEVELS = ("very_satisfied", "satisfied", "neutral", "dissatisfied", "very_dissatisfied")
RATING_LEVELS_3 = ("very_satisfied", "satisfied", "dissatisfied")
# The steps of an enrolment a door reports on node/<node>/progress (an addition).
ENROL_STEPS = ("place", "lift", "place_again", "stored")
DOSSIER_STATUSES = ("received", "processing", "supplement_required", "ready", "returned")
# What a TV reports it showed (proof of play, an addition): a page of the
# rotation, a slide (an announcement: text, picture or video) or an urgent notice.
PLAY_ITEM_TYPES = ("page", "slide", "urgent")
DUTY_ACTIONS = ("take", "leave")
MEDIA_KINDS = ("image", "video")


class MessageError(ValueError):
    """A payload that the contract does not allow. ``field`` names the culprit."""

    def __init__(self, kind: str, field: str | None, reason: str):
        self.kind = kind
        self.field = field
        self.reason = reason
        where = f"{kind}.{field}" if field else kind
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Field:
    """One field of a schema.

    ``type`` is one of: str, int, number, bool, object, list, ts (RFC 3339
    with offset), uuid, node_id. ``nullable`` fields may be null and, when
    missing, are taken as null. ``fields`` gives an object a schema of its own;
    ``values`` types every value of a free-form object; ``items`` types every
    element of a list.
    """

    type: str
    required: bool = True
    nullable: bool = False
    choices: tuple = ()
    items: "Field | None" = None
    fields: "dict[str, Field] | None" = None
    values: "Field | None" = None
    default: Any = None
    min: float | None = None
    min_len: int = 0


def _opt(type_: str, **kw) -> Field:
    """An optional field that may also be null."""
    return Field(type_, required=False, nullable=True, **kw)


# A picture or video slide's file as the TV fetches it (GET <media_url>/media/<sha256>).
_RENDITION_FIELDS: dict[str, Field] = {
    "sha256": Field("str", min_len=64),
    "size": Field("int", min=0),
    "width": Field("int", min=0),
    "height": Field("int", min=0),
}
_MEDIA_FIELDS: dict[str, Field] = {
    "kind": Field("str", choices=MEDIA_KINDS),
    "sha256": Field("str", min_len=64),       # the uploaded original
    "size": Field("int", min=0),
    "width": Field("int", min=0),
    "height": Field("int", min=0),
    "duration_s": _opt("number", min=0),      # a video's length
    # Sized for the TVs (pictures: fitted into each of [media] renditions);
    # a TV takes the smallest that covers its screen, else the largest.
    "renditions": Field("list", required=False, items=Field("object", fields=_RENDITION_FIELDS), default=()),
}

_EVENT_COMMON: dict[str, Field] = {
    "v": Field("int"),
    "event_id": Field("uuid"),
    "node_id": Field("node_id"),
    "ts": Field("ts"),
    "clock_synced": Field("bool"),
    "seq": Field("int", min=0),
}

SCHEMAS: dict[str, dict[str, Field]] = {
    "status": {
        "v": Field("int"),
        "node_id": Field("node_id"),
        "kind": Field("str", choices=NODE_KINDS),
        "state": Field("str", choices=NODE_STATES),
        "version": Field("str"),
        "since": Field("ts"),
    },
    "health": {
        "v": Field("int"),
        "node_id": Field("node_id"),
        "ts": Field("ts"),
        "uptime_s": Field("number", min=0),
        "outbox": Field("int", min=0),
        "clock_synced": Field("bool"),
        "devices": Field("object", values=Field("str", choices=DEVICE_STATES)),
        "last_frame_age_s": _opt("number", min=0),
        # Added field: how often this node sends its health, so the gateway
        # judges it by its own heartbeat (protocol.liveness).
        "interval_s": _opt("number", min=0),
    },
    "attendance": {
        **_EVENT_COMMON,
        "method": Field("str", choices=ATTENDANCE_METHODS),
        "credential": Field("str", min_len=1),
        "staff_id": _opt("str"),
        "match_score": _opt("int"),
    },
    "rating": {
        **_EVENT_COMMON,
        "desk_id": Field("str", min_len=1),
        "level": Field("str", choices=RATING_LEVELS),
        "reasons": Field("list", required=False, items=Field("str"), default=()),
        "session_id": _opt("str"),
        "officer_id": _opt("str"),
        "dossier_code": _opt("str"),
    },
    # Addition (docs/protocol.md §3.16.2): one showing on a TV, sent when it
    # ended. ``ts`` is when it started; ``seconds`` how long it was on screen.
    "play": {
        **_EVENT_COMMON,
        "item_type": Field("str", choices=PLAY_ITEM_TYPES),
        "item_id": Field("str", min_len=1),
        "seconds": Field("number", min=0),
        "title": _opt("str"),
        "media_sha256": _opt("str"),
    },
    # Addition (docs/protocol.md §3.16.3): an officer took or left a desk at the
    # kiosk by a card tap. ``card_hash`` is the card's hash as ``state/duty``
    # gives it (the UID itself never leaves the kiosk); ``staff_id`` the
    # officer the kiosk matched it to.
    "duty": {
        **_EVENT_COMMON,
        "desk_id": Field("str", min_len=1),
        "action": Field("str", choices=DUTY_ACTIONS),
        "staff_id": Field("str", min_len=1),
        "card_hash": _opt("str"),
    },
    "reply": {
        "v": Field("int"),
        "cmd_id": Field("str", min_len=1),
        "ok": Field("bool"),
        "result": _opt("object"),
        "error": _opt("str"),
    },
    # Addition to the contract (docs/protocol.md §3.8.1): a step of a running
    # command (an enrolment), sent by the node that runs it; answered by nothing.
    "progress": {
        "v": Field("int"),
        "cmd_id": Field("str", min_len=1),
        "step": Field("str", choices=ENROL_STEPS),
        "ts": Field("ts"),
    },
    "ack": {
        "v": Field("int"),
        "event_ids": Field("list", items=Field("str")),
        # An addition (docs/protocol.md §4.5): "re-publish every event you
        # still keep with a seq above this" (after a gateway restore).
        "resend_after_seq": _opt("int", min=0),
    },
    "cmd": {
        "v": Field("int"),
        "cmd_id": Field("str", min_len=1),
        "cmd": Field("str", min_len=1),
        "args": Field("object", required=False, default={}),
    },
    "roster": {
        "v": Field("int"),
        "version": Field("int", min=0),
        "staff": Field(
            "list",
            items=Field(
                "object",
                fields={
                    "staff_id": Field("str", min_len=1),
                    "name": Field("str"),
                    "department": _opt("str"),
                    "cards": Field("list", items=Field("str")),
                    "fingers": Field("object", values=Field("list", items=Field("int", min=0))),
                },
            ),
        ),
        # Additions: ``per_door`` true means the credentials are not here but
        # in each door's own ``state/roster/<node>/<part>`` (``staff`` is then
        # empty: state/roster is readable by every node, the TVs too).
        "per_door": Field("bool", required=False, default=False),
        "staff_count": _opt("int", min=0),
        "doors": Field("list", required=False, items=Field("node_id"), default=()),
    },
    # Addition to the contract: one part of one door's roster, retained on
    # ``state/roster/<node>/<part>`` (docs/protocol.md). Staff are spread over
    # ``parts`` parts by a hash of their id; the door uses a roster once it
    # holds every part 0..parts-1 with the same ``parts``. ``fingers`` are
    # this door's slots only; ``staff_count`` counts every active staff member.
    "door_roster": {
        "v": Field("int"),
        "version": Field("int", min=0),
        "node_id": Field("node_id"),
        "part": Field("int", min=0),
        "parts": Field("int", min=1),
        "staff_count": Field("int", min=0),
        "staff": Field(
            "list",
            items=Field(
                "object",
                fields={
                    "staff_id": Field("str", min_len=1),
                    "name": Field("str", required=False, default=""),
                    "department": _opt("str"),
                    "cards": Field("list", required=False, items=Field("str"), default=()),
                    "fingers": Field("list", required=False, items=Field("int", min=0), default=()),
                },
            ),
        ),
    },
    "dossiers": {
        "v": Field("int"),
        "version": Field("int", min=0),
        "generated_at": Field("ts"),
        "counts": Field("object", values=Field("int", min=0)),
        "dossiers": Field(
            "list",
            items=Field(
                "object",
                fields={
                    "code": Field("str", min_len=1),
                    "applicant": Field("str"),
                    "procedure": Field("str"),
                    "received_at": Field("str"),
                    "due_at": _opt("str"),
                    "status": Field("str", choices=DOSSIER_STATUSES),
                    "desk": _opt("str"),
                },
            ),
        ),
    },
    "calendar": {
        "v": Field("int"),
        "version": Field("int", min=0),
        "week_start": Field("str"),
        "entries": Field(
            "list",
            items=Field(
                "object",
                fields={
                    "id": Field("str", min_len=1),
                    "start": Field("str"),
                    "end": _opt("str"),
                    "all_day": Field("bool"),
                    "leaders": Field("list", items=Field("str")),
                    "title": Field("str"),
                    "location": _opt("str"),
                    "participants": _opt("str"),
                    "preparer": _opt("str"),
                },
            ),
        ),
    },
    "announcements": {
        "v": Field("int"),
        "version": Field("int", min=0),
        "items": Field(
            "list",
            items=Field(
                "object",
                fields={
                    "id": Field("str", min_len=1),
                    "title": Field("str"),
                    "body": Field("str"),
                    "qr_url": _opt("str"),
                    "valid_from": _opt("str"),
                    "valid_until": _opt("str"),
                    # Additions (docs/protocol.md §3.12.1): when in the week and
                    # day the slide may show (vocab/schedule.py; null: always),
                    # how long it stays, and a picture or video slide's manifest.
                    "schedule": _opt("str"),
                    "seconds": _opt("number", min=0),
                    "media": _opt("object", fields=_MEDIA_FIELDS),
                },
            ),
        ),
    },
    # Addition (docs/protocol.md §3.16.3): who holds each desk (null: nobody),
    # and the officers whose card taps a kiosk accepts, each card as
    # sha256("congso-card:<site>:<UID hex upper>") so no UID reaches the hall.
    # Its topic leaf is "duty" like the kiosk's event: state messages are
    # checked by ``state_kind(name)``, so this schema has a name of its own.
    "duty_state": {
        "v": Field("int"),
        "version": Field("int", min=0),
        "desks": Field("object", values=Field("object", nullable=True, fields={
            "officer_id": Field("str", min_len=1),
            "officer_name": Field("str"),
            "since": Field("ts"),
            "via": _opt("str"),
        })),
        "officers": Field("list", items=Field("object", fields={
            "staff_id": Field("str", min_len=1),
            "name": Field("str"),
            "desks": Field("list", items=Field("str")),
            "cards": Field("list", items=Field("str")),
        })),
    },
    "urgent": {
        "v": Field("int"),
        "version": Field("int", min=0),
        "items": Field(
            "list",
            items=Field(
                "object",
                fields={
                    "id": Field("str", min_len=1),
                    "title": Field("str"),
                    "body": Field("str"),
                    "until": Field("ts"),
                    "nodes": _opt("list", items=Field("node_id")),
                },
            ),
        ),
    },
    # Addition (issue 18): the office's figures for the current month, for the
    # hall TV's ``kpi`` page (gateway/kpi.py): each a share 0..1 (null: nothing
    # to count), the counts behind it and its target.
    "kpi": {
        "v": Field("int"),
        "version": Field("int", min=0),
        "month": Field("str", min_len=7),
        **{name: Field("object", fields={
            "share": _opt("number", min=0),
            "part": Field("int", min=0),
            "whole": Field("int", min=0),
            "target": _opt("number", min=0),
        }) for name in ("on_time", "online", "satisfaction")},
    },
    "ratings": {
        "v": Field("int"),
        "version": Field("int", min=0),
        "today": Field("object", values=Field("int", min=0)),
        "month": Field("object", values=Field("int", min=0)),
        "satisfied_pct_month": _opt("number", min=0),
    },
    # Addition to the contract: published retained by the gateway after it
    # has subscribed. ``session_present`` false means the broker kept nothing
    # for it, so events published before this moment may be lost: nodes then
    # re-send everything unacked at once instead of after replay_after_s.
    "gateway": {
        "v": Field("int"),
        "since": Field("ts"),
        "session_present": Field("bool"),
        "version": Field("str"),
    },
    # Addition to the contract: today's attendance in figures (retained).
    "presence": {
        "v": Field("int"),
        "version": Field("int", min=0),
        "date": Field("str"),
        "staff_active": Field("int", min=0),
        "checked_in": Field("int", min=0),
        "unknown_cards": Field("int", min=0),
        "events": Field("int", min=0),
        "unsynced_events": Field("int", min=0),
    },
    "desk": {
        "v": Field("int"),
        "session_id": Field("str", min_len=1),
        "desk_id": Field("str", min_len=1),
        "officer_id": Field("str"),
        "officer_name": Field("str"),
        "dossier_code": _opt("str"),
        "opened_at": Field("ts"),
        "expires_at": Field("ts"),
    },
}

EVENT_KINDS = topics.EVENT_LEAVES


# A door roster part's state name, as a topic leaf ("roster/door-1/0") or as
# the node keeps it on disk ("roster-door-1-0"): its message kind is door_roster.
_DOOR_ROSTER_KIND = re.compile(r"^roster[/-][a-z0-9][a-z0-9-]{0,31}[/-]\d{1,3}$")


def schema_kind(kind: str) -> str:
    """The schema of a message kind or state name ("roster/door-1/0" -> "door_roster")."""
    return "door_roster" if _DOOR_ROSTER_KIND.match(kind) else kind


# State names whose topic leaf is also the name of an event (node/<node>/duty).
_STATE_SCHEMAS = {"duty": "duty_state"}


def state_kind(name: str) -> str:
    """The message kind of retained state ``name`` ("roster", "desk/mot-cua-1", "duty", ...)."""
    if name.startswith("desk/"):
        return "desk"
    return _STATE_SCHEMAS.get(name, name)


def max_size(kind: str) -> int:
    return MAX_REPLY_PAYLOAD if kind == "reply" else MAX_PAYLOAD


# RFC 3339 date-time: seconds required, fraction optional, offset required.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
# C0 and C1 control characters other than tab, new line and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Messages a node sends: a control character in them is refused.
_EVENT_AND_NODE_KINDS = {"status", "health", "attendance", "rating", "reply", "progress", "play", "duty"}
# A UUID in its canonical 8-4-4-4-12 spelling (either case).
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def parse_ts(value: str) -> datetime:
    """Parse an RFC 3339 time that carries an offset, or raise ValueError."""
    if not _RFC3339.match(value):
        raise ValueError("not an RFC 3339 time with an offset")
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    return datetime.fromisoformat(text.replace("t", "T"))


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _check(kind: str, path: str, spec: Field, value: Any) -> Any:
    """Check one value against its spec; return the cleaned value."""

    def fail(reason: str):
        raise MessageError(kind, path, reason)

    if value is None:
        if spec.nullable:
            return None
        fail("must not be null")
    t = spec.type
    if t in ("str", "ts", "uuid", "node_id"):
        if not isinstance(value, str):
            fail(f"must be a string, got {_type_name(value)}")
        value = unicodedata.normalize("NFC", value)
        bad = _CONTROL.search(value)
        if bad:
            # A NUL or an escape in a stored text has taken screens and reports
            # down; nothing legitimate sends one (new lines and tabs are fine).
            # What a node sends is refused; what the gateway publishes (or a
            # node cached from it) loses the character, not the whole board.
            if schema_kind(kind) in _EVENT_AND_NODE_KINDS:
                fail(f"holds the control character U+{ord(bad.group()):04X}")
            value = _CONTROL.sub("", value)
        if len(value) < spec.min_len:
            fail("must not be empty")
        if spec.choices and value not in spec.choices:
            fail(f"must be one of {', '.join(spec.choices)}; got {value!r}")
        if t == "ts":
            try:
                parse_ts(value)
            except ValueError:
                fail(f"must be an RFC 3339 time with offset, e.g. 2026-11-23T07:45:00+07:00; got {value!r}")
        elif t == "uuid" and not _UUID.match(value):
            fail(f"must be a UUID like 3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b; got {value!r}")
        elif t == "node_id" and not topics.NODE_ID_RE.match(value):
            fail(f"must be a node id ([a-z0-9][a-z0-9-]{{0,31}}); got {value!r}")
        return value
    if t == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            fail(f"must be an integer, got {_type_name(value)}")
    elif t == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(f"must be a number, got {_type_name(value)}")
    elif t == "bool":
        if not isinstance(value, bool):
            fail(f"must be true or false, got {_type_name(value)}")
        return value
    elif t == "list":
        if not isinstance(value, list):
            fail(f"must be a list, got {_type_name(value)}")
        if spec.items is None:
            return value
        return [_check(kind, f"{path}[{i}]", spec.items, item) for i, item in enumerate(value)]
    elif t == "object":
        if not isinstance(value, dict):
            fail(f"must be an object, got {_type_name(value)}")
        if spec.fields is not None:
            return _check_object(kind, spec.fields, value, prefix=f"{path}.")
        if spec.values is not None:
            return {
                unicodedata.normalize("NFC", k): _check(kind, f"{path}.{k}", spec.values, v) for k, v in value.items()
            }
        return value
    else:  # pragma: no cover - a schema bug, not input
        raise AssertionError(f"unknown field type {t}")
    if spec.min is not None and value < spec.min:
        fail(f"must be at least {spec.min:g}, got {value}")
    return value


def _check_object(kind: str, schema: dict[str, Field], obj: dict, prefix: str = "") -> dict:
    clean: dict[str, Any] = {}
    for name, spec in schema.items():
        if name not in obj:
            if spec.required and not spec.nullable:
                raise MessageError(kind, prefix + name, "is required")
            default = spec.default
            clean[name] = list(default) if isinstance(default, tuple) else (dict(default) if isinstance(default, dict) else default)
            continue
        clean[name] = _check(kind, prefix + name, spec, obj[name])
    return clean


def validate(kind: str, obj: Any) -> dict:
    """Validate a decoded JSON value as message ``kind``; return the clean dict."""
    schema = SCHEMAS.get(schema_kind(kind))
    if schema is None:
        raise MessageError(kind, None, "unknown message kind")
    if not isinstance(obj, dict):
        raise MessageError(kind, None, f"payload must be a JSON object, got {_type_name(obj)}")
    if "v" not in obj:
        raise MessageError(kind, "v", "is required")
    if isinstance(obj["v"], bool) or obj["v"] != VERSION:
        raise MessageError(kind, "v", f"must be {VERSION}, got {obj['v']!r}")
    clean = _check_object(kind, schema, obj)
    if kind == "reply" and clean["ok"] is False and not clean["error"]:
        raise MessageError(kind, "error", "is required when ok is false")
    return clean


def decode(kind: str, payload: bytes | str) -> dict:
    """Raw MQTT payload -> clean dict, or MessageError saying why not."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    limit = max_size(kind)
    if len(raw) > limit:
        raise MessageError(kind, None, f"payload of {len(raw)} bytes is over the limit of {limit} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MessageError(kind, None, f"payload is not UTF-8 (byte {e.start})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise MessageError(kind, None, f"payload is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    return validate(kind, obj)


def dumps(obj: dict) -> bytes:
    """Compact UTF-8 JSON, Vietnamese kept readable (no \\u escapes)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def encode(kind: str, obj: dict) -> bytes:
    """Validate and serialise; raises MessageError before anything goes on the wire."""
    clean = validate(kind, obj)
    # Send what the sender gave, cleaned (NFC), extra fields included (the
    # contract lets us add fields); optional fields it left out stay out.
    out = {key: clean.get(key, value) for key, value in obj.items()}
    data = dumps(out)
    if len(data) > max_size(kind):
        raise MessageError(kind, None, f"payload of {len(data)} bytes is over the limit of {max_size(kind)} bytes")
    return data
