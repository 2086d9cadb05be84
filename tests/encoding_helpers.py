"""Files as Windows writes them, for the import tests."""

from __future__ import annotations

import unicodedata


def cp1258(text: str) -> bytes:
    """As Excel on a Vietnamese Windows writes "CSV": code page 1258, the vowel precomposed, the tone a combining mark."""
    out = b""
    for c in text:
        try:
            out += c.encode("cp1258")
        except UnicodeEncodeError:
            marks = unicodedata.normalize("NFD", c)
            tone = next(m for m in marks if m in "\u0300\u0301\u0303\u0309\u0323")
            out += unicodedata.normalize("NFC", marks.replace(tone, "")).encode("cp1258") + tone.encode("cp1258")
    return out
