"""Text as it enters and leaves congso: NFC, no control characters, no formulas.

Three uses, three functions:

- ``clean(value, field)`` for text that is being *stored* (imports, the CLI,
  the API, MQTT): NFC, trimmed, and refused with a ``TextError`` that names
  the field when it holds a control or format character (a NUL from a bad
  export, a bidi override that would reorder a name on the TV).
- ``printable(value)`` for text that is being *drawn* (TV, kiosk): never
  raises; whatever a stored or cached payload holds, what comes out can be
  rendered. Renderers call it last, so a bad byte from an old cache cannot
  take a screen down.
- ``cell(value)`` / ``csv_field(value)`` for text that goes into a *report*:
  no text ever becomes a formula in Excel or LibreOffice.
"""

from __future__ import annotations

import re
import unicodedata

# Categories that never belong in a name, a title or a note: Cc (controls),
# Cf (format: zero-width, bidi overrides), Cs (surrogates), Co (private use),
# Cn (unassigned).
_BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
# Allowed in multi-line fields (an announcement's body, a note).
_MULTILINE_OK = {"\n", "\t"}
# Excel and LibreOffice treat a cell that begins with one of these as a
# formula (or DDE); OWASP's list.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class TextError(ValueError):
    """A text that cannot be stored; ``field`` names where it came from."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def nfc(value: str | None) -> str | None:
    """Unicode NFC (how Vietnamese is stored and compared), or None."""
    return None if value is None else unicodedata.normalize("NFC", str(value))


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


def clean(value, field: str, *, multiline: bool = False, required: bool = False,
          max_len: int | None = None) -> str | None:
    """Text fit to store: NFC, trimmed; a control or format character is an error naming ``field``.

    ``\\r\\n`` and ``\\r`` become ``\\n`` in multi-line fields; elsewhere any
    run of white space becomes one space. Empty gives None unless required.
    """
    if value is None:
        text = ""
    else:
        text = unicodedata.normalize("NFC", str(value))
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    for index, ch in enumerate(text):
        if unicodedata.category(ch) in _BAD_CATEGORIES and not (multiline and ch in _MULTILINE_OK):
            if ch in "\t\n\r" and not multiline:
                continue  # folded into a space below
            raise TextError(field, f"holds the control character {_describe(ch)} at position {index + 1}; "
                                   "remove it (it often comes from a bad export)")
    if multiline:
        text = "\n".join(re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")).strip()
    else:
        text = re.sub(r"\s+", " ", text).strip()
    if not text:
        if required:
            raise TextError(field, "is empty")
        return None
    if max_len is not None and len(text) > max_len:
        raise TextError(field, f"is {len(text)} characters; at most {max_len}")
    return text


def printable(value) -> str:
    """Text safe to draw: NFC, with every control or format character removed (new lines kept as spaces)."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", str(value))
    out = []
    for ch in text:
        if ch in "\t\n\r":
            out.append(" ")
        elif unicodedata.category(ch) not in _BAD_CATEGORIES:
            out.append(ch)
    return "".join(out)


# openpyxl refuses these (XML 1.0 cannot carry them): IllegalCharacterError.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def is_formula_like(text: str) -> bool:
    return text.startswith(FORMULA_START)


def cell(value):
    """A value for an XLSX cell: text never read as a formula, never an illegal character.

    Callers that write with openpyxl should use ``write_cell`` so that text
    beginning with ``=`` stays text without an added character.
    """
    if not isinstance(value, str):
        return value
    return _XML_ILLEGAL.sub("", value)


def write_cell(ws, row: int, column: int, value):
    """Put ``value`` in ``ws`` at (row, column) as data, never as a formula; return the cell."""
    target = ws.cell(row=row, column=column)
    value = cell(value)
    target.value = value
    if isinstance(value, str) and value.startswith("="):
        # openpyxl takes a leading '=' for a formula; as type 's' it is written
        # as the text itself, exactly as typed.
        target.data_type = "s"
    return target


def csv_field(value):
    """A value for a CSV field: text that would start a formula gets a leading apostrophe (OWASP)."""
    if isinstance(value, str) and is_formula_like(value):
        return "'" + value
    return value
