"""congso: smart-office firmware for Vietnamese People's Committees.

One distribution, one package per role:

- ``congso.protocol``: the wire contract (topics, messages, settings, MQTT
  link, node outbox).
- ``congso.gateway``: the canonical SQLite store and the MQTT ingest.
- ``congso.devices``: device interfaces with real and simulated backends.
- ``congso.attendance_node``, ``congso.signage_node``, ``congso.rating_node``:
  the Raspberry Pi roles.
"""

__version__ = "0.1.0"
