"""The office's shared vocabulary: pure, imported by the gateway and every node.

Nothing here does I/O or imports anything outside the standard library and
this package (tests/test_architecture.py holds it to that). Each concept has
one home:

- ``text``: NFC, control characters, report cells;
- ``levels``: rating levels (one label, one colour each), scales, reasons;
- ``dossiers``: dossier statuses, their Vietnamese labels and colours, the overdue rule;
- ``announcements``: the "current announcement" rule;
- ``vietnamese``: Vietnamese dates and times, masked names.
"""
