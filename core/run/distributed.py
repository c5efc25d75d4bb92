"""Runs spread over a Dask cluster (``--scheduler`` / Processing's SCHEDULER).

Dask (``dask.distributed``) is imported here only, and only when a scheduler is asked for: a run
without one never touches it, and the plugin loads without it.

Scheduler addresses (:func:`parse_scheduler`): ``local`` / ``local:N`` — a ``LocalCluster`` of N
single-thread worker processes on this machine (N = the cores by default); ``tcp://HOST:PORT``
(or ``tls://``) — an existing scheduler (``dask scheduler``, dask-jobqueue, Kubernetes), whose
workers import the same DiffUnmix package (``PYTHONPATH``) and see the same file paths.

Tiles as tasks (:func:`tile_runner`), as xarray/rioxarray hand rasters to Dask, with a single
writer: the tile function (the fitted or loaded engine inside it) is broadcast to every worker
once (``client.scatter(..., broadcast=True)``), never sent per task; each task reads its window
(with the usual overlap) through its worker thread's own GDAL handle (a
:class:`core.io.raster.RasterReader` kept open between tasks: handles are neither thread-safe
nor picklable, and opening one costs more than reading a tile) and returns the tile's output;
the client blends the tiles in window order (:func:`core.run.tiling.process_tiled`) and is the
only writer, with a bounded number of tasks in flight, so its memory does not grow with the
raster. A worker that dies loses only its running tasks, which the scheduler runs again
elsewhere; the tile's random stream depends on the seed and its position only, so the result is
the same.

Why one writer rather than workers writing tile parts for the client to assemble: a tile's output
(2P + 1 float32 channels) is about a tenth of its input (200 int16 bands), so sending it back
costs little next to computing it; the blending stays in one place and one order (the result
is the in-process one, to round-off); the outputs stay staged and committed together by the client
(:mod:`core.io.atomic`), with no lock and no shared scratch folder for the parts.
"""

from __future__ import annotations

import collections
import importlib.util
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, Optional

from ..errors import UnmixError
from ..progress import ensure

#: the dask / distributed release DiffUnmix is tested with (requirements-dev.txt)
DASK_VERSION = "2025.2.0"

_ADDRESS = re.compile(r"^(tcp|tls)://[^\s/:]+:\d{1,5}$")
_LOCAL = re.compile(r"^local(?::(\d+))?$")
#: tasks in flight per worker: enough to keep every worker busy while the client blends
IN_FLIGHT_PER_WORKER = 3
#: windows per task: a run of consecutive windows of one row, read as one window (the overlaps and
#: the GDAL blocks under them read once, a quarter of the tasks to schedule); the last windows of a
#: run go one per task, so no worker is left with a long last task while the others idle
WINDOWS_PER_TASK = 4
#: windows per worker at the end of a run sent one per task
TAIL_WINDOWS_PER_WORKER = 4
_POLL_S = 0.2


def parse_scheduler(text: Optional[str]) -> Optional[str]:
    """The scheduler address normalised (``local:N`` or ``tcp://HOST:PORT``), or None for an
    in-process run (None, "" or "none"). No Dask import.

    Raises:
        UnmixError: not one of the accepted forms.
    """
    text = (text or "").strip()
    if not text or text.lower() == "none":
        return None
    m = _LOCAL.match(text)
    if m:
        n = int(m.group(1)) if m.group(1) else (os.cpu_count() or 1)
        if n < 1:
            raise UnmixError(f"a local cluster needs at least 1 worker, got '{text}'")
        return f"local:{n}"
    if _ADDRESS.match(text):
        return text
    raise UnmixError(f"unknown scheduler '{text}': use local, local:N (N worker processes on this machine) "
                     f"or tcp://HOST:PORT (an existing Dask scheduler)")


def require_dask() -> None:
    """A scheduler needs dask and distributed; say how to get them when they are missing."""
    if importlib.util.find_spec("distributed") is None or importlib.util.find_spec("dask") is None:
        raise UnmixError(f"a scheduler needs Dask, which is not installed: run 'python3 -m pip install --user "
                         f"dask=={DASK_VERSION} distributed=={DASK_VERSION}' (or 'make setup'), "
                         f"or leave the scheduler empty to run in this process")


def _stdlib_of(python: str) -> Optional[str]:
    try:
        out = subprocess.run([python, "-I", "-c", "import os; print(os.path.dirname(os.__file__))"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return os.path.realpath(out) if out else None


def worker_python() -> Optional[str]:
    """A Python interpreter to start local workers with when ``sys.executable`` cannot be, or None
    when it can.

    A worker receives this process's ``sys.path``, so it must run a Python with this process's
    standard library. Inside QGIS ``sys.executable`` is the ``qgis`` / ``qgis_process.bin`` binary
    (spawning it would start QGIS) or whatever ``python3`` is first on ``PATH`` (maybe another
    Python). ``DIFFUNMIX_WORKER_PYTHON`` names one; otherwise the first ``python3.X`` /
    ``python3`` next to this Python's prefixes, in /usr/bin or on ``PATH`` whose standard library
    is this process's.

    Raises:
        UnmixError: none found.
    """
    given = os.environ.get("DIFFUNMIX_WORKER_PYTHON")
    if given:
        return given
    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    exe = sys.executable or ""
    if re.match(r"^python[\d.]*(\.exe)?$", os.path.basename(exe), re.IGNORECASE) and _stdlib_of(exe) == stdlib:
        return None
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    names = ("python.exe",) if os.name == "nt" else (ver, "python3")
    folders = dict.fromkeys(os.path.join(p, "bin") for p in (sys.prefix, sys.base_prefix, sys.exec_prefix))
    candidates = [os.path.join(f, n) for f in list(folders) + ["/usr/bin"] for n in names]
    candidates += [shutil.which(n) for n in names]
    for path in dict.fromkeys(c for c in candidates if c and os.path.isfile(c) and os.access(c, os.X_OK)):
        if _stdlib_of(path) == stdlib:
            return path
    raise UnmixError(f"no Python interpreter with this one's standard library ({stdlib}) was found to start the "
                     f"local Dask workers with: set DIFFUNMIX_WORKER_PYTHON to one")


#: Dask settings of a local cluster: its scheduler, nannies and workers share this machine's cores
#: with the tasks, and their periodic callbacks at the defaults (an event-loop tick every 20 ms, a
#: system monitor every 0.5 s, the memory monitor every 0.1 s, work stealing every 0.1 s, the
#: statistical profiler sampling the task thread every 10 ms) took about 9 % of a core while idle,
#: over 0.1 CPU-s per task-second busy, on a 2-core machine; none of them is used without a dashboard
LOCAL_QUIET = {"distributed.admin.tick.interval": "1s", "distributed.admin.system-monitor.interval": "5s",
               "distributed.worker.memory.monitor-interval": "500ms", "distributed.worker.profile.enabled": False,
               "distributed.scheduler.work-stealing-interval": "1s"}

#: clients of the sessions open in this process, by address (a batch reuses its cluster per raster)
_OPEN: Dict[str, object] = {}


@contextmanager
def session(scheduler: str, progress=None, warm: tuple = ()):
    """A Dask client for ``scheduler`` (see :func:`parse_scheduler`), closed on exit (a local
    cluster's workers stop with it). Inside another session for the same address, that one's
    client is reused.

    ``warm``: modules every worker imports before the first task (the tile function's: importing
    torch on a worker takes seconds, which the first scatter of the engine would otherwise wait for).

    Yields:
        ``distributed.Client``.
    """
    address = parse_scheduler(scheduler)
    if address is None:
        raise UnmixError("no scheduler given")
    if address in _OPEN:
        if warm:
            _OPEN[address].run(_warm_up, tuple(warm))
        yield _OPEN[address]
        return
    require_dask()
    import logging

    import dask
    from distributed import Client, LocalCluster

    prog = ensure(progress)
    cluster = None
    try:
        if address.startswith("local:"):
            n = int(address.split(":")[1])
            python = worker_python()
            if python:
                multiprocessing.set_executable(python)  # the spawn context Dask's nannies start workers with
            prog.info(f"starting a local Dask cluster of {n} single-thread worker processes")
            # one thread per worker and per library: N workers on N cores, none oversubscribed
            env = {"DIFFUNMIX_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                   "OPENBLAS_NUM_THREADS": "1"}
            with dask.config.set(LOCAL_QUIET):
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR, env=env)
                client = Client(cluster)
        else:
            try:
                client = Client(address, timeout="10s")
            except OSError as exc:
                raise UnmixError(f"no Dask scheduler answers at {address}: {exc}") from None
    except BaseException:
        if cluster is not None:
            cluster.close()
        raise
    client.run(_warm_up, tuple(warm))  # GDAL, the raster reader (and ``warm``) imported once per worker
    _OPEN[address] = client
    try:
        yield client
    finally:
        _OPEN.pop(address, None)
        client.close()
        if cluster is not None:
            cluster.close()


def worker_count(client) -> int:
    """Workers the scheduler knows now."""
    return len(client.scheduler_info().get("workers", {}))


def wait_result(future, progress=None):
    """``future.result()``, checking ``progress`` for cancellation every 0.2 s meanwhile.

    Polls ``future.done()`` (a status read) instead of ``future.result(timeout=…)``: the latter's
    timeout races with completion in distributed 2025.2 (``UnboundLocalError`` from ``sync``
    seen under load).
    """
    prog = ensure(progress)
    delay, checked = 0.001, time.monotonic()
    while not future.done():
        time.sleep(delay)
        delay = min(2 * delay, 0.05)
        if time.monotonic() - checked >= _POLL_S:
            prog.check()
            checked = time.monotonic()
    return future.result()


def first_done(futures, progress=None) -> list:
    """The futures of ``futures`` that are done, waiting (and checking ``progress``) until one is."""
    prog = ensure(progress)
    delay, checked = 0.001, time.monotonic()
    while True:
        done = [f for f in futures if f.done()]
        if done:
            return done
        time.sleep(delay)
        delay = min(2 * delay, 0.05)
        if time.monotonic() - checked >= _POLL_S:
            prog.check()
            checked = time.monotonic()


def _warm_up(modules: tuple = ()) -> None:
    import importlib

    from ..io.raster import RasterReader  # noqa: F401  (imports GDAL)

    for name in modules:
        importlib.import_module(name)


@contextmanager
def maybe_session(scheduler: Optional[str], progress=None, warm: tuple = ()):
    """:func:`session` for ``scheduler``, or None without one: a run opens it before it loads or fits
    its engine, so the cluster's start-up is not counted in its tile phase (a batch pays it once)."""
    if not scheduler:
        yield None
        return
    with session(scheduler, progress, warm) as client:
        yield client


def _worker_threads() -> None:
    """The engine's threads on a worker: as many as it runs tasks at once (``dask worker --nthreads``),
    unless DIFFUNMIX_THREADS says otherwise (a local cluster sets 1); and its allocator tuned
    (:func:`_tune_malloc`)."""
    from distributed import get_worker

    os.environ.setdefault("DIFFUNMIX_THREADS", str(max(1, int(getattr(get_worker().state, "nthreads", 1)))))
    _tune_malloc()


#: glibc's allocator on a worker: blocks of at least this many bytes are mapped (and unmapped when
#: freed), and the heap is trimmed beyond twice that; these are the ceilings glibc's own dynamic
#: thresholds grow to (``mallopt(3)``)
WORKER_MMAP_THRESHOLD = 32 << 20
_MALLOC_TUNED = []


def _tune_malloc() -> None:
    """Undo Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` on a worker (its nanny's default
    ``distributed.nanny.pre-spawn-environ``): setting it switches off glibc's dynamic thresholds, so
    every tile's arrays of more than 128 kB were mapped and unmapped afresh, and the page faults
    doubled a tile's time (0.50–0.58 s against 0.25–0.28 s on one thread, docs/EXPERIMENTS.md).
    Once per process; a no-op where the C library is not glibc."""
    if _MALLOC_TUNED or not sys.platform.startswith("linux"):
        return
    _MALLOC_TUNED.append(True)
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, WORKER_MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 2 * WORKER_MMAP_THRESHOLD)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def on_worker(fn: Callable, *args, **kwargs):
    """A task that runs ``fn(*args, **kwargs)`` with the worker's thread count and GDAL cache set."""
    _worker_threads()
    _limit_gdal_cache()
    return fn(*args, **kwargs)


#: open readers of this worker thread: (path, bands, mtime, size) -> RasterReader, most recent last
_THREAD = threading.local()
#: readers kept open per worker thread (a batch's rasters come one after another)
READERS_PER_THREAD = 2


#: GDAL's block cache on a worker (MB): GDAL's default (5 % of RAM) would let each worker hold
#: over a GB of blocks that a streaming read never revisits; 256 MB thrashed on a 2048-wide 200-band
#: raster of 256² blocks (a row of blocks is 210 MB; a worker's windows read 49 ms each, 29 ms at 512)
WORKER_GDAL_CACHE_MB = 512


def _limit_gdal_cache() -> None:
    if "GDAL_CACHEMAX" not in os.environ:
        from osgeo import gdal

        if gdal.GetCacheMax() > WORKER_GDAL_CACHE_MB << 20:
            gdal.SetCacheMax(WORKER_GDAL_CACHE_MB << 20)


def _reader(path: str, bands):
    """This thread's open :class:`core.io.raster.RasterReader` of ``path`` (opened on first use).

    Opening one costs tens of ms on a 200-band file (its metadata: hundreds under load), more than a
    small tile's read; each worker thread keeps its own, never shared with another thread nor
    pickled. A file changed since (size or mtime) is opened again.
    """
    from ..io.raster import RasterReader

    cache = getattr(_THREAD, "readers", None)
    if cache is None:
        _limit_gdal_cache()
        cache = _THREAD.readers = collections.OrderedDict()
    st = os.stat(path)
    key = (os.path.abspath(path), tuple(bands), st.st_mtime_ns, st.st_size)
    reader = cache.pop(key, None) or RasterReader(path, bands=list(bands))
    cache[key] = reader
    while len(cache) > READERS_PER_THREAD:
        cache.popitem(last=False)[1].close()
    return reader


def _tile_task(fn, path: str, bands, windows, origin: bool):
    """A run of windows on a worker (consecutive ones of one row, :func:`task_windows`): one read
    through this thread's GDAL handle of the window that covers them all, ``fn`` run on each window
    cut from it (the same values as reading the window alone: the read is per pixel).

    Returns:
        ([(valid (h, w) bool, fn's output (channels, h, w) or None) per window], timing record).
    """
    import numpy as np
    from distributed import get_worker

    t0 = time.perf_counter()
    _worker_threads()
    y0, x0, h = windows[0][0], windows[0][1], windows[0][2]
    x1 = max(x + w for _, x, _, w in windows)
    cube, valid = _reader(path, bands).read(x0, y0, x1 - x0, h)
    t1, c1 = time.perf_counter(), time.thread_time()
    results = []
    for wy, wx, _, ww in windows:
        a = wx - x0
        v = np.ascontiguousarray(valid[:, a:a + ww])
        out = None
        if v.any():
            c = np.ascontiguousarray(cube[:, :, a:a + ww])
            out = fn(c, v, (wy, wx)) if origin else fn(c, v)
        results.append((v, out))
    return results, {"worker": get_worker().address, "pid": os.getpid(), "python": sys.executable,
                     "read_s": t1 - t0, "compute_s": time.perf_counter() - t1, "cpu_s": time.thread_time() - c1}


def task_windows(windows, per_task: int = WINDOWS_PER_TASK, tail: int = 0) -> list:
    """``windows`` (row-major ``(y0, x0, h, w)``) grouped into tasks, in order: up to ``per_task``
    consecutive windows of the same rows whose columns overlap or touch, so one read covers them
    without reading columns between them; the last ``tail`` windows one per task."""
    windows = [tuple(map(int, w)) for w in windows]
    cut = max(len(windows) - max(int(tail), 0), 0)
    tasks: list = []
    for i, win in enumerate(windows):
        last = tasks[-1] if tasks else None
        if (last is not None and i < cut and len(last) < per_task and last[-1][0] == win[0]
                and last[-1][2] == win[2] and last[-1][1] < win[1] <= last[-1][1] + last[-1][3]):
            last.append(win)
        else:
            tasks.append([win])
    return tasks


def tile_runner(client, fn: Callable, path: str, bands, progress=None, origin: bool = False,
                in_flight: Optional[int] = None, scheduler: Optional[str] = None):
    """The ``tiles`` of :func:`core.run.tiling.process_tiled` as tasks on ``client``'s cluster.

    Args:
        client: a ``distributed.Client`` (:func:`session`).
        fn: the tile function, picklable (it is broadcast to every worker once).
        path, bands: the raster and its 0-based bands; each worker thread opens it itself.
        progress: checked while waiting, so a cancel stops the run within a fraction of a second.
        origin: pass the window's ``(y0, x0)`` to ``fn``.
        in_flight: most tasks submitted and not yet consumed (default
            :data:`IN_FLIGHT_PER_WORKER` per worker): the client holds at most that many tasks'
            tiles (a task is up to :data:`WINDOWS_PER_TASK` windows, :func:`task_windows`).
        scheduler: the address as the user gave it (for the record).

    Returns:
        ``run(windows)`` yielding ``(valid, output or None)`` in window order; ``run.stats`` is
        filled as it goes (scheduler, workers, per-worker tasks and seconds, in-flight bound).
    """
    prog = ensure(progress)
    stats: dict = {}

    def run(windows) -> Iterator[tuple]:
        n_workers = max(worker_count(client), 1)
        depth = in_flight or IN_FLIGHT_PER_WORKER * n_workers
        t0 = time.perf_counter()
        shared = client.scatter(fn, broadcast=True, hash=False)  # the engine goes to each worker once
        stats.update({"scheduler": scheduler or str(client.scheduler.address),
                      "scheduler_address": str(client.scheduler.address), "workers": n_workers,
                      "tasks_in_flight": depth,
                      "scatter_s": round(time.perf_counter() - t0, 3)})
        per_worker: dict = {}
        pending: collections.deque = collections.deque()
        todo = iter(task_windows(windows, WINDOWS_PER_TASK, tail=TAIL_WINDOWS_PER_WORKER * n_workers))

        def submit() -> None:
            for chunk in todo:
                pending.append(client.submit(_tile_task, shared, path, list(map(int, bands)), chunk, origin,
                                             pure=False))
                return

        try:
            for _ in range(depth):
                submit()
            while pending:
                results, rec = wait_result(pending.popleft(), prog)
                submit()
                w = per_worker.setdefault(rec["worker"], {"pid": rec["pid"], "python": rec["python"], "tasks": 0,
                                                          "windows": 0, "read_s": 0.0, "compute_s": 0.0,
                                                          "cpu_s": 0.0})
                w["tasks"] += 1
                w["windows"] += len(results)
                for k in ("read_s", "compute_s", "cpu_s"):
                    w[k] = round(w[k] + rec[k], 3)
                stats["per_worker"] = per_worker
                while results:
                    yield results.pop(0)
        finally:
            if pending:
                client.cancel(list(pending), force=True)
            client.cancel(shared, force=True)
            stats["tasks_s"] = round(time.perf_counter() - t0, 3)

    run.stats = stats
    return run


@contextmanager
def maybe_tile_runner(scheduler: Optional[str], fn: Callable, path: str, bands, progress=None,
                      origin: bool = False):
    """``tiles`` for :func:`core.run.tiling.process_tiled`: None without a scheduler (this process
    computes them), else :func:`tile_runner` on a :func:`session` held while the block runs."""
    if not scheduler:
        yield None
        return
    with session(scheduler, progress) as client:
        yield tile_runner(client, fn, path, bands, progress, origin, scheduler=scheduler)
