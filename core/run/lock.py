"""One run at a time per output folder.

Two runs writing into one folder would mix their results: each renames its files
one by one, so the folder could end with one run's abundances and the other's
endmembers and report. A run therefore holds a lock on every folder it writes
into, for as long as it runs: an exclusive ``flock`` on a hidden lock file
(``.diffunmix.lock``) in that folder. The operating system releases it when
the process ends, however it ends (even ``kill -9``), so a crashed run never
leaves a folder locked; the lock file itself is removed by the run that holds it.

A second run — another process or another thread of this one (QGIS runs
Processing algorithms in parallel) — is refused at once with a one-line
:class:`UnmixError` ("in use"), before it writes anything. The lock is reentrant
within one thread: the CLI holds it around a whole command and the pipeline
takes it again inside.
"""

from __future__ import annotations

import os
import threading
from contextlib import ExitStack, contextmanager
from typing import Dict, Iterable, Iterator, List, Optional

from ..errors import UnmixError

try:  # POSIX
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_NAME = ".diffunmix.lock"

_guard = threading.Lock()
_held: Dict[str, list] = {}  # real folder → [fd, thread id, depth]


def _in_use(folder: str) -> UnmixError:
    return UnmixError(f"output folder is in use by another DiffUnmix run: {folder} (wait until it finishes, "
                      f"or choose another output folder)")


def _try_lock(fd: int) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    import msvcrt  # pragma: no cover (Windows)

    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _acquire(folder: str) -> int:
    """Open and lock ``folder``'s lock file; the descriptor (closing it releases the lock)."""
    path = os.path.join(folder, LOCK_NAME)
    for _ in range(20):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UnmixError(f"cannot write to output folder: {folder} ({exc.strerror or exc})") from None
        if not _try_lock(fd):
            os.close(fd)
            raise _in_use(folder)
        try:  # the holder before us may have removed the file between our open and our lock: retry
            if os.name != "posix" or os.stat(path).st_ino == os.fstat(fd).st_ino:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
    raise _in_use(folder)


def _release(folder: str, fd: int) -> None:
    try:  # removed while still locked, so no other run can lock a file that is about to vanish
        if os.name == "posix":
            os.remove(os.path.join(folder, LOCK_NAME))
    except OSError:
        pass
    os.close(fd)
    if os.name != "posix":  # pragma: no cover (Windows: an open file cannot be removed)
        try:
            os.remove(os.path.join(folder, LOCK_NAME))
        except OSError:
            pass


@contextmanager
def folder_lock(folder: str) -> Iterator[str]:
    """Hold the lock of output ``folder`` (which must exist) for the block.

    Raises:
        UnmixError: another run (process or thread) holds it.
    """
    real = os.path.realpath(folder)
    me = threading.get_ident()
    with _guard:
        entry = _held.get(real)
        if entry is not None and entry[1] != me:
            raise _in_use(folder)
        if entry is None:
            entry = _held[real] = [_acquire(real), me, 0]
        entry[2] += 1
    try:
        yield real
    finally:
        with _guard:
            entry[2] -= 1
            if entry[2] == 0:
                del _held[real]
                _release(real, entry[0])


def output_folders(paths: Iterable[Optional[str]]) -> List[str]:
    """The distinct existing folders of output files ``paths`` (None skipped), sorted."""
    folders = {os.path.realpath(os.path.dirname(os.path.abspath(p))) for p in paths if p}
    return sorted(f for f in folders if os.path.isdir(f))


@contextmanager
def outputs_locked(paths: Iterable[Optional[str]]) -> Iterator[None]:
    """Hold :func:`folder_lock` of every folder the output files ``paths`` go to (in sorted order)."""
    with ExitStack() as stack:
        for folder in output_folders(paths):
            stack.enter_context(folder_lock(folder))
        yield
