"""Tiled processing of rasters larger than memory: integer geometry + blending.

Windows of ``tile × tile`` pixels cover the image with a stride of
``tile − overlap``; the last window of each axis is snapped inward so every
window lies inside the raster. Each window's result is weighted by a smooth
(raised-cosine) ramp over the overlap on the sides that touch another window,
and blended as ``Σ w·ŷ / Σ w``. Rows of tiles are streamed: a row of windows
is read, processed and accumulated in a strip buffer, and the image rows that
no later window touches are written at once, so memory is bounded by
``channels × (tile + overlap) × width`` whatever the raster's height.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .progress import ensure


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


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Windows ``(y0, x0, h, w)`` in row-major order; see :func:`tile_starts`."""
    th, tw = min(tile, height), min(tile, width)
    return [(y, x, th, tw) for y in tile_starts(height, tile, overlap) for x in tile_starts(width, tile, overlap)]


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


def process_tiled(reader, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], channels: int,
                  writers: Sequence[tuple], tile: int = 128, overlap: int = 16, progress=None,
                  margin: int = 0) -> dict:
    """Apply ``fn`` tile by tile over a raster and stream the blended result to writers.

    Args:
        reader: an open :class:`core.raster.RasterReader`.
        fn: ``fn(cube (B, h, w) float32 with NaN at invalid pixels, valid (h, w) bool)
            -> (channels, h, w)``; called only for windows holding a valid pixel.
        channels: number of output channels of ``fn``.
        writers: ``(writer, start, stop)``: channels ``start:stop`` go to ``writer``
            (an open :class:`core.raster.RasterWriter`).
        tile: window size in pixels.
        overlap: overlap between windows (≥ 2·margin + 1).
        margin: pixels at internal tile edges given (almost) no weight: the
            receptive-field radius of ``fn``.
        progress: progress protocol; checked before every window.

    Returns:
        ``{"tiles": n_windows_processed, "valid_pixels": n}``.
    """
    prog = ensure(progress)
    W, H = reader.info.width, reader.info.height
    ys = tile_starts(H, tile, overlap)
    xs = tile_starts(W, tile, overlap)
    th, tw = min(tile, H), min(tile, W)
    n_total = len(ys) * len(xs)
    buf_y0 = 0  # first image row held in the buffer
    acc = np.zeros((channels, 0, W), np.float64)
    wsum = np.zeros((0, W), np.float64)
    vmask = np.zeros((0, W), bool)
    done, n_valid = 0, 0

    def grow(to_row: int):
        nonlocal acc, wsum, vmask
        extra = to_row - (buf_y0 + wsum.shape[0])
        if extra > 0:
            acc = np.concatenate([acc, np.zeros((channels, extra, W))], axis=1)
            wsum = np.concatenate([wsum, np.zeros((extra, W))], axis=0)
            vmask = np.concatenate([vmask, np.zeros((extra, W), bool)], axis=0)

    def flush(to_row: int):
        nonlocal acc, wsum, vmask, buf_y0, n_valid
        n = to_row - buf_y0
        if n <= 0:
            return
        out = acc[:, :n] / np.maximum(wsum[:n], 1e-12)
        out[:, ~vmask[:n]] = np.nan
        n_valid += int(vmask[:n].sum())
        out = out.astype(np.float32)
        for wr, a, b in writers:
            wr.write(out[a:b], 0, buf_y0)
        acc, wsum, vmask = acc[:, n:], wsum[n:], vmask[n:]
        buf_y0 = to_row

    for iy, y0 in enumerate(ys):
        grow(y0 + th)
        for ix, x0 in enumerate(xs):
            prog.check()
            cube, valid = reader.read(x0, y0, tw, th)
            r0 = y0 - buf_y0
            vmask[r0:r0 + th, x0:x0 + tw] |= valid
            if valid.any():
                out = np.asarray(fn(cube, valid), np.float64)
                wgt = blend_window(th, tw, overlap, iy > 0, iy < len(ys) - 1, ix > 0, ix < len(xs) - 1, margin)
                acc[:, r0:r0 + th, x0:x0 + tw] += out * wgt
                wsum[r0:r0 + th, x0:x0 + tw] += wgt
            done += 1
            prog.set_progress(100.0 * done / n_total)
        next_y = ys[iy + 1] if iy + 1 < len(ys) else H
        flush(next_y)
    return {"tiles": done, "valid_pixels": n_valid}
