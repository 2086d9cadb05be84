"""The wire contract (``docs/protocol.md``): topics, messages, settings, the MQTT link and the node outbox."""
