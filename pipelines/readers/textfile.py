"""Look at a delimited text file before DuckDB reads it.

Finds the encoding (UTF-8 with or without BOM, else Windows-1252), refuses binary
files with a clear reason, reads the header row, picks the delimiter and counts
physical lines so that every record can be given its real line number.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.problems import ExtractError, error

CHUNK = 16 * 1024 * 1024
# Bytes that Windows-1252 leaves undefined: a file holding them is neither encoding.
CP1252_UNDEFINED = {0x81, 0x8D, 0x8F, 0x90, 0x9D}
DELIMITERS = [",", "\t", ";", "|"]


class FileScan:
    """One background pass over a file: SHA-256, newline count, and an archive copy.

    Runs beside DuckDB's own read, so large extracts are hashed and archived at no
    extra wall-clock cost (hashlib releases the GIL on large buffers).
    """

    def __init__(self, path: Path, archive_to: Path | None = None) -> None:
        self.path = path
        self.archive_to = archive_to
        self.sha256 = ""
        self.newlines = 0
        self.last_byte = -1
        self.size = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        digest = hashlib.sha256()
        sink = None
        try:
            if self.archive_to is not None:
                self.archive_to.parent.mkdir(parents=True, exist_ok=True)
                sink = self.archive_to.open("wb")
            with self.path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    self.newlines += chunk.count(b"\n")
                    self.last_byte = chunk[-1]
                    self.size += len(chunk)
                    if sink is not None:
                        sink.write(chunk)
            if sink is not None:
                shutil.copystat(self.path, self.archive_to)
        except BaseException as exc:  # re-raised in the caller's thread by wait()
            self._error = exc
        finally:
            if sink is not None:
                sink.close()
        self.sha256 = digest.hexdigest()

    def wait(self) -> FileScan:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self

    @property
    def physical_lines(self) -> int:
        self.wait()
        return self.newlines + (0 if self.last_byte in (-1, ord("\n")) else 1)


@dataclass
class TextInfo:
    """What we learned about a text extract."""

    path: Path  # the file DuckDB should read (a UTF-8 copy for Windows-1252 files)
    encoding: str  # "utf-8" or "windows-1252"
    delimiter: str
    header: list[str]
    header_lines: int  # lines the header record spans (more than 1 if it has quoted newlines)
    scan: FileScan = field(repr=False)  # of the original file
    original: Path | None = None
    label: str = ""
    tmp_dir: Path | None = None

    @property
    def physical_lines(self) -> int:
        """Newline-terminated lines, counting a last line without one."""
        return self.scan.physical_lines

    def simple_lines(self, records: int) -> bool:
        """True when record n (1-based, after the header) is on line n + header_lines.

        Blank lines and quoted newlines each add a physical line without a record, so
        equality means neither is present.
        """
        return self.physical_lines == records + self.header_lines


def check_size(path: Path, label: str, max_mb: int) -> None:
    """Refuse a file (of any format) larger than the setting max_extract_mb, before reading."""
    size = path.stat().st_size
    if size > max_mb * 1024 * 1024:
        raise ExtractError(
            error(
                f"the file is {size / 1024 / 1024:,.0f} MiB, more than the {max_mb:,} MiB limit",
                "split it into smaller files (event extracts such as marks can be loaded a "
                "term at a time) or raise the setting max_extract_mb",
                file=label,
            )
        )


def _utf16_without_bom(head: bytes) -> bool:
    """UTF-16 text with no byte-order mark: NUL in (nearly) every other byte."""
    sample = head[:4096]
    half = len(sample) // 2
    return half >= 8 and max(sample[0::2].count(0), sample[1::2].count(0)) >= 0.9 * half


def _line_of_offset(path: Path, offset: int) -> int:
    with path.open("rb") as handle:
        return handle.read(offset).count(b"\n") + 1


def inspect(
    path: Path, label: str, tmp_dir: Path, max_mb: int, archive_to: Path | None = None
) -> TextInfo:
    """Check a text extract and return how to read it; raise ExtractError if it cannot be."""
    size = path.stat().st_size
    where = {"file": label}
    if size == 0:
        raise ExtractError(
            error(
                "the file is empty (0 bytes)",
                "export the extract again; the file should start with a header row",
                **where,
            )
        )
    check_size(path, label, max_mb)
    with path.open("rb") as handle:
        head = handle.read(65536)
    if head.startswith(b"PK\x03\x04"):
        raise ExtractError(
            error(
                "the file is an Excel workbook or ZIP archive but its name ends in "
                f"{path.suffix or '(nothing)'}",
                "rename it to .xlsx, or save it from Excel as 'CSV UTF-8'",
                **where,
            )
        )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _utf16_without_bom(head):
        raise ExtractError(
            error(
                "the file is encoded as UTF-16",
                "save it as 'CSV UTF-8' (or Windows-1252) instead",
                **where,
            )
        )
    if b"\x00" in head:
        raise ExtractError(
            error(
                "the file holds binary data, not text (it contains NUL bytes)",
                "export the extract from your MIS as CSV or XLSX; check you picked the right file",
                line=head[: head.index(b"\x00")].count(b"\n") + 1,
                **where,
            )
        )

    # The head decides; DuckDB validates every later byte as UTF-8 while it reads, and
    # a file that fails there is read again as Windows-1252 (see as_windows_1252).
    encoding = "utf-8" if _head_is_utf8(head, whole=size <= len(head)) else "windows-1252"
    read_path = path
    if encoding == "windows-1252":
        read_path = _transcode(path, label, tmp_dir)
    scan = FileScan(path, archive_to)

    # Only the header row is taken from here; "replace" because a text read of 65536
    # characters may reach bytes past the head, which DuckDB checks (and reports) later.
    with read_path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
        text_head = handle.read(65536)
    first_line = text_head.split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=lambda d: (first_line.count(d), d == ","))
    reader = csv.reader(io.StringIO(text_head), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise ExtractError(
            error(
                "the header row cannot be read",
                "the first line must name the columns",
                line=1,
                **where,
            )
        ) from exc
    if not any(h.strip() for h in header):
        raise ExtractError(
            error(
                "the first line is blank; it must be the header row",
                "remove blank lines above the header",
                line=1,
                **where,
            )
        )
    return TextInfo(
        read_path, encoding, delimiter, header, reader.line_num, scan, path, label, tmp_dir
    )


def _head_is_utf8(head: bytes, whole: bool = False) -> bool:
    """Whether ``head`` is UTF-8; a character cut at its end is allowed unless it is the
    ``whole`` file (then a truncated sequence at the end is not UTF-8)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
    except UnicodeDecodeError:
        return False
    return True


def as_windows_1252(info: TextInfo) -> TextInfo:
    """The same file read as Windows-1252, after DuckDB found it is not UTF-8 after all."""
    assert info.original is not None and info.tmp_dir is not None
    info.path = _transcode(info.original, info.label, info.tmp_dir)
    info.encoding = "windows-1252"
    return info


def _transcode(path: Path, label: str, tmp_dir: Path) -> Path:
    """A UTF-8 copy of a Windows-1252 file; refuse bytes that Windows-1252 leaves undefined."""
    with path.open("rb") as handle:
        position = 0
        while chunk := handle.read(CHUNK):
            bad = next((i for i, b in enumerate(chunk) if b in CP1252_UNDEFINED), None)
            if bad is not None:
                raise ExtractError(
                    error(
                        f"the file has the byte 0x{chunk[bad]:02X}, which is neither UTF-8 nor "
                        "Windows-1252 text",
                        "open the file in a spreadsheet or text editor, "
                        "fix the damaged characters on that line and save it as 'CSV UTF-8'",
                        file=label,
                        line=_line_of_offset(path, position + bad),
                    )
                )
            position += len(chunk)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    # A unique name: loads in other processes (dry runs take no lock) share tmp_dir.
    handle, name = tempfile.mkstemp(
        prefix=f"{path.stem}.", suffix=f".utf8{path.suffix}", dir=tmp_dir
    )
    os.close(handle)
    target = Path(name)
    with (
        path.open("r", encoding="cp1252", newline="") as src,
        target.open("w", encoding="utf-8", newline="") as dst,
    ):
        while chunk := src.read(CHUNK):
            dst.write(chunk)
    return target


def record_lines(info: TextInfo, blank: bool = False) -> list[int]:
    """The starting line of every data record (slow path: quoted newlines or blank lines).

    DuckDB skips blank lines when it reads rows but counts them in the line numbers of
    rejected rows; ``blank=True`` gives the starts in that numbering (blank lines too).
    """
    starts: list[int] = []
    with info.path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=info.delimiter)
        next(reader, None)
        previous_end = reader.line_num
        for row in reader:
            if row or blank:
                starts.append(previous_end + 1)
            previous_end = reader.line_num
    return starts
