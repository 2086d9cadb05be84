"""One reader for every table a clerk imports (staff, dossiers): CSV or XLSX.

What an office PC actually saves, all accepted:

- CSV as UTF-8, with or without a BOM (Excel's "CSV UTF-8");
- CSV in Windows-1258, the ANSI code page of a Vietnamese Windows (plain
  "CSV" in Excel there), which writes tones as combining marks: the text is
  turned to NFC by the importers' cleaning;
- UTF-16 with a BOM (Excel's "Unicode Text", tab separated);
- comma, semicolon (Excel with a Vietnamese locale) or tab, sniffed from
  the first non-empty line;
- XLSX, read with openpyxl in read-only mode, values only (``data_only``:
  a formula is never evaluated; its cached value, if any, is read as text).

A hostile or broken file gives an ``ImportFileError`` saying what is wrong,
never a traceback: not a zip, a zip whose sheets unpack to more than
``MAX_UNPACKED`` bytes, more than ``MAX_ROWS`` rows or ``MAX_COLUMNS``
columns, a CSV field over ``MAX_FIELD`` characters.

The importers own the meaning of the columns (header aliases, checks, the
error-per-line and all-or-nothing rules); this module only turns bytes into
``(line number, [cell text, ...])`` rows. For an XLSX file the "line" is the
sheet's row number, which is what the clerk sees in Excel.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

MAX_FILE = 20 * 1024 * 1024  # a commune's staff list or dossier export is far smaller
MAX_UNPACKED = 100 * 1024 * 1024  # what the XLSX's parts may unpack to
MAX_ROWS = 100_000
MAX_COLUMNS = 200
MAX_FIELD = 10_000  # characters in one CSV field

ZIP_MAGIC = b"PK\x03\x04"


class ImportFileError(ValueError):
    """The file cannot be read as a table; the message says why and what to do."""


@dataclass
class Table:
    rows: list[tuple[int, list[str]]]  # (line or row number, cells as text)
    encoding: str  # "utf-8", "Windows-1258", "utf-16" or "xlsx"
    delimiter: str | None = None  # CSV only


def read_path(path: str | Path) -> Table:
    """Read ``path`` (CSV or XLSX, told apart by content, not by name)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE:
            raise ImportFileError(f"{path}: the file is {size // (1024 * 1024)} MB; at most {MAX_FILE // (1024 * 1024)} MB")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImportFileError(f"{path}: is a directory, not a file") from None
    except OSError as e:
        raise ImportFileError(f"{path}: cannot be read ({e.strerror})") from None
    return read_bytes(data, name=str(path))


def read_bytes(data: bytes, name: str = "the file") -> Table:
    if len(data) > MAX_FILE:
        raise ImportFileError(f"{name}: the file is {len(data) // (1024 * 1024)} MB; at most {MAX_FILE // (1024 * 1024)} MB")
    if data.startswith(ZIP_MAGIC) or name.lower().endswith((".xlsx", ".xlsm")):
        return _read_xlsx(data, name)
    return _read_csv(data, name)


# -- CSV ---------------------------------------------------------------------------

def decode_text(data: bytes, name: str = "the file") -> tuple[str, str]:
    """(text, encoding name) of a text file as an office PC writes it."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as e:
            raise ImportFileError(f"{name}: starts as UTF-16 but byte {e.start} is not: save it again") from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        # Windows-1258 leaves only a few bytes undefined, so most non-UTF-8
        # files decode; a wrong guess shows as wrong letters, which the
        # importers cannot see, hence the encoding is reported back.
        return data.decode("cp1258"), "Windows-1258"
    except UnicodeDecodeError as e:
        raise ImportFileError(f"{name}: neither UTF-8 nor Windows-1258 text (byte {e.start}); "
                              "save it as 'CSV UTF-8' in Excel") from None


def _read_csv(data: bytes, name: str) -> Table:
    text, encoding = decode_text(data, name)
    if "\x00" in text:
        # csv cannot read it, and it is never a real table (a binary file, or
        # UTF-16 without its BOM).
        line = text[:text.index("\x00")].count("\n") + 1
        raise ImportFileError(f"{name}: line {line}: holds a NUL byte: this is not a CSV text file "
                              "(save it as 'CSV UTF-8' in Excel)")
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first:
        raise ImportFileError(f"{name}: the file is empty")
    try:
        delimiter = csv.Sniffer().sniff(first, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    old_limit = csv.field_size_limit()
    csv.field_size_limit(MAX_FIELD)
    try:
        line = 1
        for record in reader:
            # reader.line_num is the line the record ended on; a quoted field
            # can span lines, so report where it started.
            rows.append((line, record))
            line = reader.line_num + 1
            if len(rows) > MAX_ROWS:
                raise ImportFileError(f"{name}: more than {MAX_ROWS} lines; split the file")
            if len(record) > MAX_COLUMNS:
                raise ImportFileError(f"{name}: line {rows[-1][0]}: {len(record)} columns; at most {MAX_COLUMNS}")
    except csv.Error as e:
        raise ImportFileError(f"{name}: line {reader.line_num}: broken CSV ({e})") from None
    finally:
        csv.field_size_limit(old_limit)
    return Table(rows, encoding, delimiter)


# -- XLSX --------------------------------------------------------------------------

def _read_xlsx(data: bytes, name: str) -> Table:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        unpacked = sum(info.file_size for info in archive.infolist())
        archive.close()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise ImportFileError(f"{name}: not a readable Excel file (not a valid .xlsx zip: {e}); "
                              "open it in Excel and save it again as .xlsx or CSV UTF-8") from None
    if unpacked > MAX_UNPACKED:
        raise ImportFileError(f"{name}: not a readable Excel file: it unpacks to {unpacked // (1024 * 1024)} MB "
                              f"(at most {MAX_UNPACKED // (1024 * 1024)} MB); save only the table, or as CSV")
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises KeyError, ValueError, XML errors ... for a damaged file
        raise ImportFileError(f"{name}: not a readable Excel file ({type(e).__name__}: {e})") from None
    try:
        if not book.worksheets:
            raise ImportFileError(f"{name}: the workbook has no sheet")
        sheet = book.worksheets[0]
        # The sheet's own <dimension> may claim a million rows and columns:
        # read what is there, and pad nothing to a claimed width.
        sheet.reset_dimensions()
        rows: list[tuple[int, list[str]]] = []
        try:
            for number, row in enumerate(sheet.iter_rows(values_only=True, max_row=MAX_ROWS + 1), start=1):
                if number > MAX_ROWS:
                    raise ImportFileError(f"{name}: more than {MAX_ROWS} rows in the first sheet; split the file")
                cells = list(row)
                while cells and cells[-1] is None:
                    cells.pop()  # a formatted but empty column far to the right
                if len(cells) > MAX_COLUMNS:
                    raise ImportFileError(f"{name}: row {number}: {len(cells)} columns; at most {MAX_COLUMNS}")
                rows.append((number, [cell_text(v) for v in cells]))
        except ImportFileError:
            raise
        except Exception as e:  # a sheet that breaks half way through
            raise ImportFileError(f"{name}: not a readable Excel file (row {len(rows) + 1}: "
                                  f"{type(e).__name__}: {e})") from None
    finally:
        book.close()
    return Table(rows, "xlsx")


def cell_text(value) -> str:
    """An XLSX cell as the text a clerk would have typed."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M") if (value.hour or value.minute) else value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
