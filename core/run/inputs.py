"""Reading the input raster for a run: open and validate it, sample its valid pixels,
read a few windows of it, stream it window by window through a per-pixel function.

Shapes: pixels ``(N, B)``, cubes ``(B, H, W)``, windows ``(x, y, w, h)`` in pixels.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional

import numpy as np

from ..errors import UnmixError
from ..progress import ensure
from .tiling import tile_starts


def open_input(input_path: str, bands: Optional[str]):
    """Open the input raster and select its bands; validate it can be unmixed.

    Returns:
        (info, band indices (0-based), wavelengths_nm of the selection or None,
        fwhm_nm of the selection or None).
    """
    from ..io.raster import band_subset, read_info

    info = read_info(input_path)
    if info.count < 2:
        raise UnmixError(
            f"input raster has {info.count} band; unmixing needs a multi- or hyperspectral raster: {input_path}")
    idx = np.asarray(band_subset(info, bands), dtype=int)
    if idx.size < 3:
        raise UnmixError(f"only {idx.size} usable band(s) selected; unmixing needs at least 3 "
                         f"(2 or more endmembers, fewer than the bands)")
    wl = None if info.wavelengths_nm is None else np.asarray(info.wavelengths_nm, float)[idx]
    fwhm = None if info.fwhm_nm is None else np.asarray(info.fwhm_nm, float)[idx]
    return info, idx, wl, fwhm


#: a raster of more than this many pixels per pixel sampled is sampled in random windows, not read whole
SPARSE_SAMPLING_FACTOR = 64


def sample_pixels(reader, max_pixels: int, seed: int, progress=None) -> np.ndarray:
    """A uniform random sample of valid pixels, read window by window.

    Every valid pixel draws a random priority; the ``max_pixels`` smallest are
    kept, so the sample is uniform over the pixels read and deterministic for a
    seed while memory stays bounded by ``max_pixels``. A raster of up to
    :data:`SPARSE_SAMPLING_FACTOR` × ``max_pixels`` pixels is read whole; a larger
    one in random block-aligned windows (:func:`random_windows`), so the cost
    follows the pixels sampled, not the raster's declared size.

    Returns:
        Y (N, B) float32; N == 0 when no valid pixel was found.
    """
    prog = ensure(progress)
    rng = np.random.default_rng(seed)
    keep = np.zeros((0, len(reader.bands)), np.float32)
    keys = np.zeros(0)
    info = reader.info
    sparse = info.width * info.height > SPARSE_SAMPLING_FACTOR * max_pixels
    windows = random_windows(info.width, info.height, info.block_size, max_pixels, rng) if sparse \
        else list(reader.windows(max_pixels=1 << 18))
    got = 0
    for i, (x, y, w, h) in enumerate(windows):
        prog.check()
        cube, valid = reader.read(x, y, w, h)
        idx = np.flatnonzero(valid.ravel())
        if idx.size:
            got += idx.size
            k = rng.random(idx.size)
            if idx.size > max_pixels:  # only this window's best candidates are copied
                sel = np.argpartition(k, max_pixels)[:max_pixels]
                idx, k = idx[sel], k[sel]
            pix = cube.reshape(cube.shape[0], -1)[:, idx].T.astype(np.float32)
            keep = np.concatenate([keep, pix])
            keys = np.concatenate([keys, k])
            if keep.shape[0] > max_pixels:
                sel = np.argpartition(keys, max_pixels)[:max_pixels]
                keep, keys = keep[sel], keys[sel]
        prog.set_progress(100.0 * (i + 1) / len(windows))
        if sparse and got >= 2 * max_pixels:  # enough candidates: the rest of the draws is not read
            break
    order = np.argsort(keys, kind="stable")
    return keep[order]


def random_windows(width: int, height: int, block_size: tuple, max_pixels: int, rng,
                   window_pixels: int = 4096) -> list:
    """Distinct random windows of about ``window_pixels`` pixels, each inside one block of the file's
    block grid (so a read decodes one block), enough to hold ``max_pixels`` valid pixels several
    times over: ``(x, y, w, h)`` in drawing order.

    Strip-organised files get one-row windows along the strip, tiled files square ones.
    """
    bw, bh = max(1, min(int(block_size[0]), width)), max(1, min(int(block_size[1]), height))
    h = min(bh, 64)
    w = min(bw, max(64, window_pixels // h))
    nbx, nby = -(-width // bw), -(-height // bh)
    count = int(min(nbx * nby * max(1, (bw // w) * (bh // h)), 4 * max_pixels // (w * h) + 64))
    seen, out = set(), []
    for _ in range(count * 4):
        if len(out) >= count:
            break
        bx, by = int(rng.integers(nbx)), int(rng.integers(nby))
        cw, ch = min(bw, width - bx * bw), min(bh, height - by * bh)  # the block, clipped to the raster
        ww, hh = min(w, cw), min(h, ch)
        x = bx * bw + int(rng.integers(cw - ww + 1))
        y = by * bh + int(rng.integers(ch - hh + 1))
        if (x, y) not in seen:
            seen.add((x, y))
            out.append((x, y, ww, hh))
    return out


#: above this many pixels, a raster without a valid pixel in its sample is not scanned band by band
HUGE_RASTER_PIXELS = 1 << 28


def no_valid_pixels(reader, input_path: str, progress=None) -> UnmixError:
    """The error for a raster without a valid pixel, naming the bands that hold no valid value
    at all (one such band invalidates every pixel)."""
    info = reader.info
    if info.width * info.height > HUGE_RASTER_PIXELS:  # read in samples only: do not scan it all for a hint
        return UnmixError(f"no valid pixel found in random windows of the {info.width}x{info.height} raster "
                          f"(all or almost all nodata or NaN): {input_path}; crop it to its valid area "
                          f"(e.g. gdal_translate -srcwin)")
    empty = reader.empty_bands(progress)
    hint = ""
    if empty:
        shown = ", ".join(str(b) for b in empty[:8]) + (", …" if len(empty) > 8 else "")
        hint = (f"; band(s) {shown} hold no valid value anywhere: leave them out with a band subset "
                f"(--bands / BANDS)")
    return UnmixError(f"input raster has no valid pixels (all nodata or NaN): {input_path}{hint}")


def has_valid_pixel(reader, progress=None) -> bool:
    """Whether the raster holds at least one valid pixel (stops at the first window that has one)."""
    prog = ensure(progress)
    for x, y, w, h in reader.windows(max_pixels=1 << 18):
        prog.check()
        if reader.read(x, y, w, h)[1].any():
            return True
    return False


def stream_pixels(reader, writers: List, fn: Callable[[np.ndarray], List[np.ndarray]],
                  progress=None) -> Dict[str, float]:
    """Apply a per-pixel function window by window and write its outputs.

    Args:
        reader: an open ``RasterReader``.
        writers: open ``RasterWriter`` objects, one per array ``fn`` returns.
        fn: maps valid pixels (N, B) to a list of arrays (N, c_k).
        progress: progress protocol.

    Returns:
        ``{"sum", "summed", "count", "unsolved"}``: the sum of the last output's first column where
        finite and how many values it adds; the count of pixels written with finite abundances
        (the first output); the valid pixels whose abundances were not finite (written as nodata
        in every output).
    """
    prog = ensure(progress)
    windows = list(reader.windows(max_pixels=1 << 18))
    total, summed, count, unsolved = 0.0, 0, 0, 0
    for i, (x, y, w, h) in enumerate(windows):
        prog.check()
        cube, valid = reader.read(x, y, w, h)
        pix = cube[:, valid].T
        with np.errstate(over="ignore", invalid="ignore"):
            outs = [np.asarray(o, np.float32) for o in fn(pix)] if pix.shape[0] else None
        if outs is not None:  # a pixel without finite abundances (first output) is nodata in every output
            ok = np.isfinite(outs[0]).all(axis=1)
            rows = np.flatnonzero(valid.ravel())
            valid = valid.copy()
            valid.ravel()[rows[~ok]] = False
            outs = [o[ok] for o in outs]
            unsolved += int((~ok).sum())
        for k, wr in enumerate(writers):
            arr = np.full((wr.count, h, w), np.nan, np.float32)
            if outs is not None:
                arr[:, valid] = outs[k].T
            wr.write(arr, x, y)
        if outs is not None:
            last = outs[-1][:, 0]
            total += float(np.sum(last[np.isfinite(last)], dtype=np.float64))
            summed += int(np.isfinite(last).sum())
            count += int(outs[0].shape[0])
        prog.set_progress(100.0 * (i + 1) / len(windows))
    return {"sum": total, "summed": summed, "count": count, "unsolved": unsolved}


def calibration_windows(width: int, height: int, size: int, count: int = 4) -> list:
    """Up to ``count`` windows of ``size`` px spread over the raster (the whole raster if small)."""
    if width * height <= count * size * size:
        ys, xs = tile_starts(height, size, 0), tile_starts(width, size, 0)
    else:
        k = int(np.ceil(np.sqrt(count)))
        ys = sorted({int(v) for v in np.linspace(0, max(height - size, 0), k)})
        xs = sorted({int(v) for v in np.linspace(0, max(width - size, 0), k)})
    return [(x, y, min(size, width), min(size, height)) for y in ys for x in xs][: max(count, 1) * 4]


#: pixels of scene windows the noise-robust endmembers are estimated on (four 256² windows)
ROBUST_WINDOW_PIXELS = 262144
#: pixels of the first of those windows the scene gate, HybridSTU's scene term and the semi-blind
#: rounds work on
SCENE_WINDOW_PIXELS = 40000


def window_cubes(reader, max_pixels: int = SCENE_WINDOW_PIXELS, size: int = 256) -> list:
    """``(cube, valid)`` of :func:`calibration_windows` holding a valid pixel, until ``max_pixels``."""
    cubes, n = [], 0
    for x, y, w, h in calibration_windows(reader.info.width, reader.info.height, size):
        cube, valid = reader.read(x, y, w, h)
        if valid.any():
            cubes.append((cube, valid))
            n += int(valid.sum())
        if n >= max_pixels:
            break
    return cubes


def first_pixels(cubes: list, max_pixels: int) -> list:
    """The windows :func:`window_cubes` with ``max_pixels`` would return, taken from a longer list."""
    n = 0
    for i, (_, valid) in enumerate(cubes):
        n += int(valid.sum())
        if n >= max_pixels:
            return cubes[: i + 1]
    return cubes
