"""The gateway: owner of the office's canonical data (SQLite) and of the MQTT ingest."""
