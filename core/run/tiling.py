"""Tiled processing of rasters larger than memory: integer geometry + blending.

Windows of ``tile × tile`` pixels cover the image with a stride of
``tile − overlap``; the last window of each axis is snapped inward so every
window lies inside the raster. Each window's result is weighted by a smooth
(raised-cosine) ramp over the overlap on the sides that touch another window,
and blended as ``Σ w·ŷ / Σ w``. Windows are streamed in row-major order and
accumulated per column segment (the columns between two window starts); a
segment's rows above the next row of windows are final once the window that
starts it is done, and are written at once. What stays in memory is the
windows being blended plus the overlap rows of one row of windows:
about ``channels × (2·tile·tile + overlap × width)`` values,: a raster 4× wider
costs barely more (whole-width strips of ``tile`` rows would grow with it).

Reading and writing overlap the computation: a background thread reads the
next windows (up to :data:`PREFETCH_BYTES` ahead) and another writes the
finished blocks, so on a GPU, where the network takes a fraction of the time,
a run costs about its slowest part instead of the sum of all three. GDAL
releases the GIL while it reads and writes. The blending itself stays on the
calling thread, in the same order, so the result does not change.
"""

from __future__ import annotations

import collections
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from ..progress import ensure


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of windows of length ``tile`` covering ``[0, size)``.

    Consecutive windows overlap by at least ``overlap``; the last one ends at
    ``size`` exactly (snapped inward). A single window when ``size <= tile``.
    """
    if size <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def balanced_tile(size: int, tile: int, overlap: int) -> int:
    """The shortest window length ≤ ``tile`` that covers ``size`` with as few windows as ``tile`` does.

    With fixed windows the last one is snapped inward and can overlap its
    neighbour almost entirely (1024 px in 512-px windows with a 16-px overlap:
    3 windows, 1536 px read per axis, 2.25× the pixels of the raster); with
    balanced windows the same 3 windows are 352 px long (1.03×).
    """
    if size <= tile:
        return size
    step = max(1, tile - overlap)
    n = -(-(size - overlap) // step)  # windows needed: n·step + overlap ≥ size
    return min(tile, -(-(size - overlap) // n) + overlap)


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Windows ``(y0, x0, h, w)`` in row-major order, as :func:`process_tiled` visits them
    (balanced lengths, :func:`balanced_tile`; starts from :func:`tile_starts`)."""
    th, tw = balanced_tile(height, tile, overlap), balanced_tile(width, tile, overlap)
    return [(y, x, th, tw) for y in tile_starts(height, th, overlap) for x in tile_starts(width, tw, overlap)]


def _ramp(n: int, overlap: int, low: bool, high: bool, margin: int = 0) -> np.ndarray:
    """1-D weights: ramps of length ``overlap`` at the flagged ends, never 0.

    The first ``margin`` samples of a ramp get a negligible weight (their values
    are corrupted by the tile edge within the network's receptive field), the
    rest rises as a raised cosine.
    """
    w = np.ones(n, np.float64)
    r = min(overlap, n // 2)
    if r > 0:
        m = min(max(int(margin), 0), max((r - 1) // 2, 0))
        k = max(r - 2 * m, 1)
        rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(k) + 0.5) / k)
        ramp = np.concatenate([np.full(m, 1e-9), rise, np.ones(max(r - m - k, 0))])[:r]
        if low:
            w[:r] = np.minimum(w[:r], ramp)
        if high:
            w[n - r:] = np.minimum(w[n - r:], ramp[::-1])
    return np.maximum(w, 1e-9)


def blend_window(h: int, w: int, overlap: int, top: bool, bottom: bool, left: bool, right: bool,
                 margin: int = 0) -> np.ndarray:
    """(h, w) blending weights; a side flagged True touches a neighbouring window.

    With ``margin`` ≥ the receptive-field radius and ``overlap`` ≥ 2·margin + 1,
    a local operator's tiled result equals the untiled one.
    """
    return np.outer(_ramp(h, overlap, top, bottom, margin), _ramp(w, overlap, left, right, margin))


#: most bytes of input windows read ahead of the computation (at least one window)
PREFETCH_BYTES = 256 << 20
_POLL_S = 0.1


class _Worker:
    """A background thread fed through a bounded queue, with errors handed back.

    ``produce=True``: the thread runs ``job()`` (an iterator) and queues its
    items for :meth:`get`. ``produce=False``: the thread calls ``job(item)``
    for every item given to :meth:`put`, in order. An exception in the thread
    is raised by the next :meth:`get` / :meth:`put` / :meth:`finish`.
    :meth:`stop` abandons the work and joins the thread.
    """

    _END = object()

    def __init__(self, job, depth: int, produce: bool, name: str):
        self._q: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._job = job
        self._thread = threading.Thread(target=self._produce if produce else self._consume, name=name, daemon=True)
        self._thread.start()

    def _offer(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self):
        try:
            for item in self._job():
                if not self._offer(item):
                    return
        except BaseException as exc:  # handed to the caller by get()
            self._error = exc
        self._offer(self._END)

    def _consume(self):
        while True:
            try:
                item = self._q.get(timeout=_POLL_S)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if item is self._END:
                return
            if self._error is None and not self._stop.is_set():
                try:
                    self._job(item)
                except BaseException as exc:  # raised again by the next put() or finish()
                    self._error = exc

    def _raise(self):
        if self._error is not None:
            raise self._error

    def get(self):
        """Next item of a producer (StopIteration at its end)."""
        while True:
            try:
                item = self._q.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._q.empty():
                    self._raise()
                    raise StopIteration from None
        if item is self._END:
            self._raise()
            raise StopIteration
        return item

    def put(self, item):
        """Hand an item to a consumer."""
        self._raise()
        while True:
            try:
                self._q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                self._raise()
                if not self._thread.is_alive():
                    raise RuntimeError("background writer stopped") from None

    def finish(self):
        """Let a consumer drain its queue, join it, and raise what it raised."""
        self.put(self._END)
        self._thread.join()
        self._raise()

    def stop(self):
        """Abandon the work: stop the thread and join it (errors are dropped)."""
        self._stop.set()
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                break
        self._thread.join()


class _Segment:
    """The blending accumulators of one column segment ``[x0, x1)`` of the image, for the rows
    ``[y0, y0 + n)`` that windows have touched and that are not written yet (float64)."""

    def __init__(self, channels: int, x0: int, x1: int):
        self.x0, self.x1, self.y0 = x0, x1, 0
        self.acc = np.zeros((channels, 0, x1 - x0), np.float64)
        self.wsum = np.zeros((0, x1 - x0), np.float64)
        self.vmask = np.zeros((0, x1 - x0), bool)

    def add(self, y0: int, a: int, b: int, valid, out, wgt) -> None:
        """Columns ``a:b`` of a window at row ``y0`` (whose left edge is at or before ``x0``):
        its valid mask, and its output weighted by ``wgt`` (None: no valid pixel)."""
        h = valid.shape[0]
        extra = y0 + h - (self.y0 + self.wsum.shape[0])
        if extra > 0:
            w = self.x1 - self.x0
            self.acc = np.concatenate([self.acc, np.zeros((self.acc.shape[0], extra, w))], axis=1)
            self.wsum = np.concatenate([self.wsum, np.zeros((extra, w))], axis=0)
            self.vmask = np.concatenate([self.vmask, np.zeros((extra, w), bool)], axis=0)
        r0, n = y0 - self.y0, b - a
        self.vmask[r0:r0 + h, :n] |= valid[:, a:b]
        if out is not None:
            self.acc[:, r0:r0 + h, :n] += out[:, :, a:b] * wgt[:, a:b]
            self.wsum[r0:r0 + h, :n] += wgt[:, a:b]

    def take(self, to_row: int, first: tuple, totals: dict):
        """The blended rows ``[y0, to_row)`` as ``(float32 (channels, n, w) with NaN where unsolved,
        x0, y0)``, dropped from the accumulators and counted in ``totals``; None if there are none.
        ``first``: the channels ``(start, stop)`` whose finiteness decides if a pixel is solved."""
        n = to_row - self.y0
        if n <= 0:
            return None
        with np.errstate(invalid="ignore", over="ignore"):
            out = self.acc[:, :n] / np.maximum(self.wsum[:n], 1e-12)
            ok = self.vmask[:n] & np.isfinite(out[first[0]:first[1]].astype(np.float32)).all(axis=0)
            totals["sums"] += out[:, ok].astype(np.float32).sum(axis=1, dtype=np.float64)
        out[:, ~ok] = np.nan
        totals["valid"] += int(ok.sum())
        totals["unsolved"] += int(self.vmask[:n].sum()) - int(ok.sum())
        block = (out.astype(np.float32), self.x0, self.y0)
        # copies: the written rows' memory goes now, not at the next window
        self.acc, self.wsum, self.vmask = self.acc[:, n:].copy(), self.wsum[n:].copy(), self.vmask[n:].copy()
        self.y0 = to_row
        return block


def process_tiled(reader, fn: Callable[..., np.ndarray], channels: int,
                  writers: Sequence[tuple], tile: int = 128, overlap: int = 16, progress=None,
                  margin: int = 0, origin: bool = False, tiles: Optional[Callable] = None,
                  threads: int = 1) -> dict:
    """Apply ``fn`` tile by tile over a raster and stream the blended result to writers.

    Args:
        reader: an open :class:`core.io.raster.RasterReader`.
        fn: ``fn(cube (B, h, w) float32 with NaN at invalid pixels, valid (h, w) bool)
            -> (channels, h, w)``; called only for windows holding a valid pixel.
        channels: number of output channels of ``fn``.
        writers: ``(writer, start, stop)``: channels ``start:stop`` go to ``writer``
            (an open :class:`core.io.raster.RasterWriter`).
        tile: largest window size in pixels (shortened per axis by :func:`balanced_tile`).
        overlap: overlap between windows (≥ 2·margin + 1).
        margin: pixels at internal tile edges given (almost) no weight: the
            receptive-field radius of ``fn``.
        progress: progress protocol; checked before every window.
        origin: call ``fn(cube, valid, (y0, x0))`` with the window's position (a per-tile
            random stream that depends on the position only, whoever computes the tile).
        tiles: who computes the windows: ``tiles(windows)`` with ``windows`` the
            ``(y0, x0, h, w)`` of :func:`tile_grid` yields ``(valid (h, w) bool, fn's output or
            None)`` for each, in that order (:func:`core.run.distributed.tile_runner`: tasks on
            a Dask cluster). None: this process reads and computes them (:func:`local_tiles`,
            ``threads`` windows at once).

    The reader and the writers are used from background threads while this
    runs (one thread each, never two at once); they are idle again when it
    returns or raises. The blending happens here, in window order, whoever
    computed the windows, so the result does not depend on it.

    Returns:
        ``{"tiles": n_windows_processed, "valid_pixels": n, "unsolved": m, "channel_sums": s}``:
        ``n`` pixels written with finite values in the first writer's channels (the abundances),
        ``m`` valid input pixels whose values there were not finite (e.g. inputs near the float32
        limit), written as nodata in every output like invalid pixels, ``s`` the (channels,) sums
        over the ``n`` pixels; and ``"distributed"``: the ``stats`` attribute of ``tiles`` if it has one,
        or ``"threads"``: the windows computed at once in this process.
    """
    prog = ensure(progress)
    W, H = reader.info.width, reader.info.height
    th, tw = balanced_tile(H, tile, overlap), balanced_tile(W, tile, overlap)
    ys = tile_starts(H, th, overlap)
    xs = tile_starts(W, tw, overlap)
    n_total = len(ys) * len(xs)
    # column segment j = [xs[j], xs[j + 1]): no window after those starting at xs[j] touches it
    segs = [_Segment(channels, x0, x1) for x0, x1 in zip(xs, xs[1:] + [W])]
    done = 0
    totals = {"valid": 0, "unsolved": 0, "sums": np.zeros(channels, np.float64)}
    first = writers[0][1:] if writers else (0, channels)  # the abundances' channels

    def flush(seg: "_Segment", to_row: int):
        block = seg.take(to_row, first, totals)
        if block is not None:
            writer.put(block)

    def write(item):
        out, x0, y0 = item
        for wr, a, b in writers:
            wr.write(out[a:b], x0, y0)

    windows = [(y0, x0, th, tw) for y0 in ys for x0 in xs]
    results = (tiles or local_tiles(reader, fn, origin, threads))(windows)
    writer = _Worker(write, 2, False, "diffunmix-write")
    try:
        for iy, y0 in enumerate(ys):
            next_y = ys[iy + 1] if iy + 1 < len(ys) else H
            for ix, x0 in enumerate(xs):
                prog.check()
                valid, out = next(results)
                wgt = None
                if out is not None:
                    out = np.asarray(out)
                    wgt = blend_window(th, tw, overlap, iy > 0, iy < len(ys) - 1, ix > 0, ix < len(xs) - 1,
                                       margin)
                for seg in segs[ix:]:  # the window covers segment ix and reaches into the next ones
                    if seg.x0 >= x0 + tw:
                        break
                    seg.add(y0, seg.x0 - x0, min(seg.x1, x0 + tw) - x0, valid, out, wgt)
                del valid, out
                flush(segs[ix], next_y)  # its rows above the next row of windows are final
                done += 1
                prog.set_progress(100.0 * done / n_total)
        writer.finish()
    except BaseException:
        writer.stop()
        raise
    finally:
        results.close()
    n_valid, n_unsolved, sums = totals["valid"], totals["unsolved"], totals["sums"]
    stats = {"tiles": done, "valid_pixels": n_valid, "unsolved": n_unsolved, "channel_sums": sums.tolist()}
    if getattr(tiles, "stats", None) is not None:
        stats["distributed"] = tiles.stats
    elif tiles is None:
        stats["threads"] = threads
    return stats


def local_tiles(reader, fn: Callable[..., np.ndarray], origin: bool = False, threads: int = 1):
    """The windows computed in this process: ``fn`` on each window read from ``reader``, read
    ahead by a background thread (up to :data:`PREFETCH_BYTES`); see :func:`process_tiled`.

    ``threads`` > 1: that many windows are computed at once, each on its own thread (``fn`` must
    be thread-safe: the engine's tile function is, its random stream depends on the window),
    at most twice as many in flight; results still come in window order."""

    def run(windows) -> Iterator[tuple]:
        def read_all():
            for y0, x0, h, w in windows:
                yield reader.read(x0, y0, w, h)

        def call(cube, valid, y0, x0):
            return fn(cube, valid, (y0, x0)) if origin else fn(cube, valid)

        h, w = (windows[0][2], windows[0][3]) if windows else (1, 1)
        window_bytes = 4 * max(1, len(getattr(reader, "bands", ()))) * h * w  # float32 cube
        prefetch = _Worker(read_all, max(1, min(8, PREFETCH_BYTES // window_bytes)), True, "diffunmix-read")
        pool = ThreadPoolExecutor(threads, thread_name_prefix="diffunmix-tile") if threads > 1 else None
        pending: collections.deque = collections.deque()
        try:
            for y0, x0, _, _ in windows:
                cube, valid = prefetch.get()
                if pool is None:
                    yield valid, (call(cube, valid, y0, x0) if valid.any() else None)
                    del cube
                    continue
                pending.append((valid, pool.submit(call, cube, valid, y0, x0) if valid.any() else None))
                del cube
                while len(pending) > 2 * threads or (pending and (pending[0][1] is None or pending[0][1].done())):
                    valid_i, fut = pending.popleft()
                    yield valid_i, None if fut is None else fut.result()
            while pending:
                valid_i, fut = pending.popleft()
                yield valid_i, None if fut is None else fut.result()
        finally:
            for _, fut in pending:
                if fut is not None:
                    fut.cancel()
            if pool is not None:
                pool.shutdown(wait=True)  # a running window finishes (or sees the cancel) before we return
            prefetch.stop()

    return run
