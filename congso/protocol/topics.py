"""Topic builders and parser for ``congso/<site>/...`` (wire contract v1).

Builders raise ``ValueError`` on an id that the contract does not allow, so
a bad node id fails at start-up, not as a topic the ACL silently refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "congso"
# The gateway's client id and broker user.
GATEWAY_ID = "gateway"
NODE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
# Site and desk ids follow the node id's rules: they become topic levels.
SITE_ID_RE = NODE_ID_RE
DESK_ID_RE = NODE_ID_RE

# Per-node topics the node publishes, `congso/<site>/node/<node>/<leaf>`.
# "progress" is an addition to the contract (docs/protocol.md §3.8.1): the
# steps of a running enrolment, so the console shows "place", "lift", ...
# "play" (a TV's proof of play) and "duty" (an officer takes or leaves a desk
# at the kiosk) are events too, additions (docs/protocol.md §3.16.2, §3.16.3).
NODE_LEAVES = ("status", "health", "attendance", "rating", "reply", "progress", "play", "duty")
EVENT_LEAVES = ("attendance", "rating", "play", "duty")
# Retained state the gateway publishes, `congso/<site>/state/<name>`.
# "gateway" is an addition to the contract (docs/protocol.md): the gateway's
# retained "I am subscribed" beacon, which tells nodes to re-send at once.
# "presence" is another: today's attendance in figures, for the TV and the
# province roll-up.
# "duty" is another: which officer holds each desk, and the officers' card
# hashes so a kiosk knows a staff card from a citizen's (docs/protocol.md §3.16.3).
STATE_NAMES = ("roster", "dossiers", "calendar", "announcements", "ratings", "gateway", "presence", "urgent", "kpi",
               "duty")
# Addition to the contract: each door's own roster, `state/roster/<node>/<part>`
# (docs/protocol.md). Only that door may read it (broker ACL), so card UIDs
# and finger slots never reach a TV or a kiosk in the public hall; split in
# parts so that any staff size fits the 64 KiB limit.
DOOR_ROSTER_NAME_RE = re.compile(r"^roster/([a-z0-9][a-z0-9-]{0,31})/(\d{1,3})$")


def check_node_id(node_id: str) -> str:
    if not isinstance(node_id, str) or not NODE_ID_RE.match(node_id):
        raise ValueError(
            f"invalid node id {node_id!r}: use 1-32 characters a-z, 0-9 and '-', starting with a letter or digit"
        )
    return node_id


def check_site_id(site_id: str) -> str:
    if not isinstance(site_id, str) or not SITE_ID_RE.match(site_id):
        raise ValueError(
            f"invalid site id {site_id!r}: use 1-32 characters a-z, 0-9 and '-', starting with a letter or digit"
        )
    return site_id


def check_desk_id(desk_id: str) -> str:
    if not isinstance(desk_id, str) or not DESK_ID_RE.match(desk_id):
        raise ValueError(f"invalid desk id {desk_id!r}: use 1-32 characters a-z, 0-9 and '-'")
    return desk_id


def node_topic(site: str, node: str, leaf: str) -> str:
    if leaf not in NODE_LEAVES:
        raise ValueError(f"unknown node topic {leaf!r}; known: {', '.join(NODE_LEAVES)}")
    return f"{ROOT}/{check_site_id(site)}/node/{check_node_id(node)}/{leaf}"


def status(site: str, node: str) -> str:
    return node_topic(site, node, "status")


def health(site: str, node: str) -> str:
    return node_topic(site, node, "health")


def attendance(site: str, node: str) -> str:
    return node_topic(site, node, "attendance")


def rating(site: str, node: str) -> str:
    return node_topic(site, node, "rating")


def reply(site: str, node: str) -> str:
    return node_topic(site, node, "reply")


def progress(site: str, node: str) -> str:
    return node_topic(site, node, "progress")


def ack(site: str, node: str) -> str:
    return f"{ROOT}/{check_site_id(site)}/ack/{check_node_id(node)}"


def cmd(site: str, node: str) -> str:
    return f"{ROOT}/{check_site_id(site)}/cmd/{check_node_id(node)}"


def door_roster_name(node: str, part: int) -> str:
    """The state name of part ``part`` of door ``node``'s roster: ``roster/<node>/<part>``."""
    if not isinstance(part, int) or not 0 <= part < 1000:
        raise ValueError(f"roster part {part!r} must be 0-999")
    return f"roster/{check_node_id(node)}/{part}"


def state(site: str, name: str) -> str:
    if DOOR_ROSTER_NAME_RE.match(name):
        return f"{ROOT}/{check_site_id(site)}/state/{name}"
    if name not in STATE_NAMES:
        raise ValueError(f"unknown state {name!r}; known: {', '.join(STATE_NAMES)}")
    return f"{ROOT}/{check_site_id(site)}/state/{name}"


def desk(site: str, desk_id: str) -> str:
    return f"{ROOT}/{check_site_id(site)}/state/desk/{check_desk_id(desk_id)}"


# Subscriptions.
def all_node_topics(site: str) -> str:
    """What the gateway subscribes to: every node's outgoing topics."""
    return f"{ROOT}/{check_site_id(site)}/node/+/+"


def all_state(site: str) -> str:
    return f"{ROOT}/{check_site_id(site)}/state/#"


@dataclass(frozen=True)
class Topic:
    """A parsed topic. ``kind`` is ``node``, ``ack``, ``cmd``, ``state`` or ``desk``."""

    site: str
    kind: str
    node: str | None = None  # for node, ack, cmd
    leaf: str | None = None  # node topic leaf, state name or desk id


def parse(topic: str) -> Topic:
    """Parse a congso topic or raise ValueError saying what is wrong with it."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != ROOT:
        raise ValueError(f"not a congso topic: {topic!r}")
    site = parts[1]
    if not SITE_ID_RE.match(site):
        raise ValueError(f"bad site id in topic {topic!r}")
    kind = parts[2]
    if kind == "node" and len(parts) == 5:
        node, leaf = parts[3], parts[4]
        if not NODE_ID_RE.match(node):
            raise ValueError(f"bad node id in topic {topic!r}")
        if leaf not in NODE_LEAVES:
            raise ValueError(f"unknown node topic {leaf!r} in {topic!r}")
        return Topic(site, "node", node, leaf)
    if kind in ("ack", "cmd") and len(parts) == 4:
        if not NODE_ID_RE.match(parts[3]):
            raise ValueError(f"bad node id in topic {topic!r}")
        return Topic(site, kind, parts[3])
    if kind == "state" and len(parts) == 4 and parts[3] in STATE_NAMES:
        return Topic(site, "state", leaf=parts[3])
    if kind == "state" and len(parts) == 6 and DOOR_ROSTER_NAME_RE.match("/".join(parts[3:])):
        # leaf "roster/<node>/<part>": also the name the node keeps it under.
        return Topic(site, "state", node=parts[4], leaf="/".join(parts[3:]))
    if kind == "state" and len(parts) == 5 and parts[3] == "desk" and DESK_ID_RE.match(parts[4]):
        return Topic(site, "desk", leaf=parts[4])
    raise ValueError(f"unknown congso topic {topic!r}")
