"""The usage journal: what the usage log has not committed yet, in an append-only file the OS holds.

Every usage row is appended here (one `write()`, no fsync: a killed process loses nothing the kernel has)
before the answer's last byte is sent, and so is each budget reservation when it is made. The usage log
commits rows in batches; at each batch it seals the current segment and starts a new one, carrying over
the entries of requests still in flight, and deletes the sealed segments once their rows are committed.
A process that dies leaves its segments behind; the next start replays them into the store (rows are
keyed by request id, so a replay is idempotent) and deletes them.

Entries are JSON lines `[tag, value]`: `u` a final usage row, `p` a row as it stood when the answer's
last bytes went out (a stream's closing events), `h` a budget reservation (hold) of a request in flight.
For each request the last entry counts. A journal may open each segment with a `header` entry (the usage
log's: `c`, the names of its rows' values, which are then lists in that order, not objects). Each process writes its own segments, named after an owner id,
and holds an advisory lock on its owner file while it runs: a starting process replays only the segments
of owners nobody holds (dead processes), so several workers can share one store.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import orjson

from faregate import jsonio
from faregate.values import frozen

log = logging.getLogger("faregate.usage")
ROW: Final = "u"
PROVISIONAL: Final = "p"
HOLD: Final = "h"
SEGMENT_SUFFIX: Final = ".jsonl"
LOCK_SUFFIX: Final = ".lock"


def entry(tag: str, value: Any) -> bytes:
    """One journal line. Tuples are written as arrays, mappings as objects."""
    return jsonio.dumps((tag, value), default=_plain) + b"\n"


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):  # a read-only mapping (MappingProxyType) of a record
        return dict(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Journal:
    """This process's segments in `directory`, each opening with `header` (when given). Not thread-safe:
    the caller serializes `append` and `rotate` (the usage log does, under its buffer lock)."""

    def __init__(self, directory: Path, header: bytes = b"") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.header = header
        self.owner = f"{os.getpid()}-{os.urandom(4).hex()}"
        self._lock_fd = _own(directory, self.owner)
        self._seq = 0
        self._fd = self._open(self._seq)

    def segment(self, seq: int) -> Path:
        return self.directory / f"{self.owner}.{seq:08d}{SEGMENT_SUFFIX}"

    def _open(self, seq: int) -> int:
        fd = os.open(self.segment(seq), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if self.header:
            write_all(fd, self.header)
        return fd

    def append(self, data: bytes) -> None:
        write_all(self._fd, data)

    def rotate(self, carry: bytes) -> Path:
        """Seal the current segment and continue in a new one that starts with its header and `carry`;
        returns the sealed segment, to `discard` once what it holds is committed."""
        sealed = self.segment(self._seq)
        self._seq += 1
        fd = self._open(self._seq)
        if carry:
            write_all(fd, carry)
        os.close(self._fd)
        self._fd = fd
        return sealed

    @staticmethod
    def discard(segments: Iterable[Path]) -> None:
        for path in segments:
            path.unlink(missing_ok=True)

    def close(self, *, remove: bool) -> None:
        """Stop writing; `remove` (everything is committed) deletes the current segment and the owner file."""
        os.close(self._fd)
        if remove:
            self.segment(self._seq).unlink(missing_ok=True)
            (self.directory / f"{self.owner}{LOCK_SUFFIX}").unlink(missing_ok=True)
        os.close(self._lock_fd)


def _own(directory: Path, owner: str) -> int:
    """Create and lock this process's owner file. Locked under a temporary name, then renamed: an owner
    file under its final name is always held by a live process or by nobody."""
    tmp = directory / f".{owner}{LOCK_SUFFIX}"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    tmp.rename(directory / f"{owner}{LOCK_SUFFIX}")
    return fd


@frozen
class Orphan:
    """The segments a dead process left, in the order written, and its lock (held while replaying)."""

    owner: str
    segments: tuple[Path, ...]
    lock_fd: int | None
    lock_path: Path | None

    def entries(self) -> Iterator[tuple[str, Any]]:
        for path in self.segments:
            for n, line in enumerate(path.read_bytes().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    tag, value = orjson.loads(line)
                except (orjson.JSONDecodeError, ValueError, TypeError):
                    log.warning(
                        "usage journal %s: line %d is not an entry (cut short?), skipped", path.name, n
                    )
                    continue
                yield str(tag), value

    def release(self) -> None:
        """Everything replayed is committed: delete the segments, then the owner file."""
        Journal.discard(self.segments)
        if self.lock_path is not None:
            self.lock_path.unlink(missing_ok=True)
        if self.lock_fd is not None:
            os.close(self.lock_fd)


def orphans(directory: Path) -> list[Orphan]:
    """The segments of owners no live process holds."""
    if not directory.is_dir():
        return []
    by_owner: dict[str, list[Path]] = {}
    for path in directory.glob(f"*{SEGMENT_SUFFIX}"):
        owner, _, _ = path.name.removesuffix(SEGMENT_SUFFIX).rpartition(".")
        by_owner.setdefault(owner, []).append(path)
    found = []
    for owner, segments in by_owner.items():
        lock_path = directory / f"{owner}{LOCK_SUFFIX}"
        lock_fd = None
        if lock_path.exists():
            lock_fd = os.open(lock_path, os.O_RDWR)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its process is alive and writing
                os.close(lock_fd)
                continue
        found.append(
            Orphan(owner, tuple(sorted(segments)), lock_fd, lock_path if lock_fd is not None else None)
        )
    return found
