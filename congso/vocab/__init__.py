"""The office's shared vocabulary: pure, imported by the gateway and every node.

Nothing here does I/O or imports a role package. Each concept has one home:
``text`` (NFC, control characters, report cells).
"""
