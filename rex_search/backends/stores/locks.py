"""File locks of an embedded index: one writer per index, and commits that readers never see
half-done. Both are ``flock``s, released by the OS when a process dies (a kill -9 never leaves
a stale lock)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from rex_search.errors import BackendError


class WriteLock:
    """An exclusive lock on ``write.lock`` holding the owner's pid, kept until the run ends."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle

    @classmethod
    def acquire(cls, directory: Path) -> WriteLock:
        handle = open(directory / "write.lock", "a+")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            handle.close()
            raise BackendError(f"index {directory} is being written by process {owner}; wait "
                               "for it to finish (readers are not affected)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return cls(handle)

    def release(self) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


@contextmanager
def committing(directory: Path) -> Iterator[None]:
    """Held (exclusive) while a commit writes BM25, then vectors, then records, then the
    manifest: a reader loading the stores meanwhile would pair one store's new state with
    another's old one and call a healthy index damaged."""
    with _locked(directory, fcntl.LOCK_EX) as held:
        assert held  # a blocking exclusive lock is always granted (or raises)
        yield


@contextmanager
def reading_a_snapshot(directory: Path, wait: bool = True) -> Iterator[bool]:
    """Held (shared) while a reader loads the stores, so they all show the same commit. Yields
    whether the snapshot is safe to take: False only with ``wait=False`` while a commit is
    under way (the caller keeps its previous state and tries again later)."""
    with _locked(directory, fcntl.LOCK_SH | (0 if wait else fcntl.LOCK_NB)) as held:
        yield held


@contextmanager
def _locked(directory: Path, operation: int) -> Iterator[bool]:
    handle = _open_lock_file(directory / "commit.lock")
    if handle is None:  # no index folder yet, or a read-only one: nobody can be committing
        yield True
        return
    try:
        try:
            fcntl.flock(handle, operation)
        except BlockingIOError:
            held = False
        else:
            held = True
        try:
            yield held
        finally:
            if held:
                fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def _open_lock_file(path: Path) -> IO[str] | None:
    try:
        return open(path, "a")  # noqa: SIM115 (closed by the caller)
    except FileNotFoundError:
        return None
    except PermissionError:
        # flock needs no write access: an existing lock file is still honoured
        return open(path) if path.exists() else None  # noqa: SIM115
