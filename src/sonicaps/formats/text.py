"""Reading text files whose encoding may be wrong: errors name the line, not a byte offset."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


class FormatError(ValueError):
    """A file that cannot be read as the format it claims to be."""


def open_text(path: Path, encoding: str = "utf-8") -> TextIO:
    # utf-8-sig reads plain UTF-8 too, and drops the byte-order mark spreadsheets write
    # (which would otherwise glue itself to the first column's name).
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    return open(path, encoding=codec, newline="")


def decode_error(path: Path, encoding: str, err: UnicodeDecodeError) -> FormatError:
    """The error for a file that is not `encoding` text, naming the first bad line and
    column. Python reports a byte offset in an 8 KB buffer; the file is re-read in binary,
    line by line, to find where it really is."""
    try:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                try:
                    raw.decode(encoding)
                except UnicodeDecodeError as e:
                    return FormatError(
                        f"{path}: line {number}, column {e.start + 1}: byte 0x{raw[e.start]:02x} is not "
                        f"{encoding} text; give the file's encoding with --encoding (e.g. latin-1, cp1252)")
    except (OSError, LookupError):
        pass
    return FormatError(f"{path}: not {encoding} text ({err.reason}); give its encoding with --encoding")


def read_text(path: Path, encoding: str = "utf-8") -> str:
    try:
        with open_text(path, encoding) as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise decode_error(path, encoding, e) from e


def csv_header(path: Path, encoding: str = "utf-8", delimiter: str = ",") -> list[str]:
    try:
        with open_text(path, encoding) as f:
            return [h.strip() for h in next(csv.reader(f, delimiter=delimiter), [])]
    except UnicodeDecodeError as e:
        raise decode_error(path, encoding, e) from e


def csv_rows(path: Path, required: tuple[str, ...] = (), encoding: str = "utf-8",
             delimiter: str = ",") -> Iterator[tuple[int, dict[str, str]]]:
    """(line number where the row starts, row) of a CSV, after checking its columns. Cells
    are kept byte for byte (a file name that begins with a space keeps it)."""
    with open_text(path, encoding) as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        try:
            header = [h.strip() for h in (reader.fieldnames or [])]
        except UnicodeDecodeError as e:
            raise decode_error(path, encoding, e) from e
        reader.fieldnames = header
        missing = [c for c in required if c not in header]
        if missing:
            raise FormatError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(header)})")
        line = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as e:
                raise decode_error(path, encoding, e) from e
            except csv.Error as e:
                raise FormatError(f"{path}: line {reader.line_num}: {e}") from e
            yield line, row
            line = reader.line_num + 1
