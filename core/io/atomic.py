"""Outputs that appear whole or not at all.

Every file DiffUnmix writes goes first to a hidden temporary name next to its
final path (``.NAME.partial-PID-N.EXT``, same folder so the rename is atomic)
and is renamed onto the final path only when it is complete: a failed,
cancelled or killed run never leaves a half-written file under a real name and
never damages a file that was there before.

- :func:`atomic_write`: one file (CSV, PNG, JSON, HTML, checkpoint).
- :class:`StagedOutputs`: a set of files renamed together when a whole run succeeded.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import time
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

from ..errors import UnmixError
from ..progress import ensure

_counter = itertools.count()


def partial_path(path: str, tag: Optional[str] = None) -> str:
    """The hidden temporary name of ``path`` in its own folder, unique in this process.

    The extension is kept (writers that pick a format from it still do), and the process id
    is part of the name so leftovers of a dead process can be told apart.
    """
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    tag = tag or f"{os.getpid()}-{next(_counter)}"
    return os.path.join(folder, f".{stem}.partial-{tag}{ext}")


#: ``.NAME.partial-PID-N.EXT`` (and its ``.aux.xml``), and the synthetic scene's ``.diffunmix-synth-PID-…``
#: working folder: what a killed run can leave behind
_PARTIAL = re.compile(r"^\.(?:.+\.partial-(\d+)-\d+(?:\.[^.]*)?(?:\.aux\.xml)?|diffunmix-synth-(\d+)-.+)$")


_PARTIAL_NAME = re.compile(r"^\.(.+)\.partial-\d+-\d+((?:\.[^.]*)?)$")


def final_name(path: str) -> str:
    """The final path of a temporary name made by :func:`partial_path` (any other path unchanged):
    what a message shows the user, who never sees the temporary name."""
    folder, name = os.path.split(path)
    m = _PARTIAL_NAME.match(name)
    return os.path.join(folder, m.group(1) + m.group(2)) if m else path


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def sweep_stale_partials(folder: str) -> list:
    """Remove the temporary files (and synth working folders) that runs killed before they could
    clean up (``kill -9``, a power cut) left in ``folder``: those whose process id is not running.

    Temporary files of live runs are left alone. POSIX only (elsewhere a no-op).

    Returns:
        The paths removed.
    """
    if os.name != "posix":
        return []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    removed = []
    for name in names:
        m = _PARTIAL.match(name)
        if not m or _alive(int(m.group(1) or m.group(2))):
            continue
        path = os.path.join(folder, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            removed.append(path)
        except OSError:
            pass
    return removed


def remove_quietly(*paths: Optional[str]) -> None:
    """Remove files (and their GDAL ``.aux.xml`` side-cars) that may or may not exist."""
    for p in paths:
        if not p:
            continue
        for candidate in (p, p + ".aux.xml"):
            try:
                os.remove(candidate)
            except OSError:
                pass


@contextmanager
def atomic_write(path: str, what: str = "") -> Iterator[str]:
    """Write ``path`` through a temporary file: yields the temporary path to write to.

    When the block completes, the temporary file is renamed onto ``path``; when it raises,
    the temporary file is removed and ``path`` is untouched. An ``OSError`` (disk full,
    quota, I/O error) becomes a one-line :class:`UnmixError` naming ``path``, never the
    temporary name.

    Args:
        path: the final file.
        what: words before the path in the error message (e.g. ``"the model file "``).
    """
    tmp = partial_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise UnmixError(f"cannot write {what}{final_name(path)}: {exc.strerror or exc} (is the disk full?)") from None
    finally:
        if os.path.exists(tmp):
            remove_quietly(tmp)


class StagedOutputs:
    """Temporary names for a set of outputs, renamed together on :meth:`commit`."""

    def __init__(self, finals: Dict[str, Optional[str]]):
        self.finals = {k: os.path.abspath(v) for k, v in finals.items() if v}
        tag = f"{os.getpid()}-{int(time.time() * 1e6) % 10**9}"
        self.temps = {key: partial_path(final, tag) for key, final in self.finals.items()}

    def path(self, key: str) -> Optional[str]:
        return self.temps.get(key)

    def commit(self, progress=None) -> None:
        """Rename every staged file onto its final name; a cancel requested until this moment
        (``progress``) still wins: :class:`Cancelled` is raised and nothing is renamed."""
        ensure(progress).check()
        for key, tmp in self.temps.items():
            if os.path.exists(tmp):
                os.replace(tmp, self.finals[key])

    def abort(self) -> None:
        remove_quietly(*self.temps.values())


class disk_errors:  # noqa: N801 (a context manager)
    """Turn an ``OSError`` while writing ``path`` (disk full, quota, I/O error) into a one-line UnmixError."""

    def __init__(self, path: str):
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, OSError):
            raise UnmixError(f"cannot write {final_name(self.path)}: {exc.strerror or exc} (is the disk full?)") \
                from None
        return False
