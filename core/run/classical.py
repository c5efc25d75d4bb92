"""The classical run: VCA endmembers (library-named), FCLS abundances streamed window by
window from and to disk, then the endmember CSV, plot and report."""

from __future__ import annotations

import time

import numpy as np

from ..classical.fcls import fcls
from ..io.raster import RasterReader, RasterWriter
from .context import RunContext
from .inputs import stream_pixels
from .outputs import UnmixResult, check_solved, finish_outputs, reconstruction_rmse
from .start import estimate_start
from .tiling import process_tiled

#: window size of the FCLS tasks on a cluster (about the in-process windows of 2¹⁸ pixels)
TASK_TILE = 512


class FclsTile:
    """The FCLS tile function on a cluster (picklable): (P + 1, h, w) of abundances and the
    reconstruction RMSE of each valid pixel (0 elsewhere) for endmembers ``E`` (P, B)."""

    def __init__(self, E: np.ndarray):
        self.E = E

    def __call__(self, cube: np.ndarray, valid: np.ndarray) -> np.ndarray:
        pix = cube[:, valid].T
        A = fcls(pix, self.E)
        out = np.zeros((self.E.shape[0] + 1,) + valid.shape, np.float32)
        out[:-1, valid] = A.T
        out[-1, valid] = reconstruction_rmse(pix, A, self.E)[:, 0]
        return out


def _fcls_on_cluster(ctx: RunContext, reader, E, writers, progress) -> dict:
    """FCLS window by window as tasks on ``ctx.options.scheduler``'s cluster; the sums
    :func:`core.run.inputs.stream_pixels` returns, and the cluster's record."""
    from .distributed import maybe_session, maybe_tile_runner

    P = E.shape[0]
    fn = FclsTile(E)
    outs = [(wr, i * P, i * P + wr.count) for i, wr in enumerate(writers)]  # A: 0..P, res: P
    t0 = time.perf_counter()
    with maybe_session(ctx.options.scheduler, progress):  # its start-up timed apart, as the deep run does
        start = time.perf_counter() - t0
        with maybe_tile_runner(ctx.options.scheduler, fn, ctx.input_path, ctx.bands, progress) as tiles:
            st = process_tiled(reader, fn, P + 1, outs, tile=TASK_TILE, overlap=0, progress=progress, tiles=tiles)
    return {"sum": st["channel_sums"][P], "summed": st["valid_pixels"], "count": st["valid_pixels"],
            "unsolved": st["unsolved"], "distributed": st.get("distributed"), "cluster_start_s": start}


def run_classical(ctx: RunContext) -> UnmixResult:
    """VCA + FCLS on ``ctx``'s raster; every output is staged and committed together."""
    opts, prog, info = ctx.options, ctx.progress, ctx.info
    staged = ctx.staged()
    timings = {}
    try:
        with RasterReader(ctx.input_path, bands=ctx.bands) as reader:
            st = estimate_start(reader, ctx.input_path, opts, ctx.wavelengths_nm, ctx.fwhm_nm, len(ctx.bands),
                                prog.sub(0, 10))
            E = st.E
            timings["estimation_s"] = time.perf_counter() - ctx.t0
            prog.set_progress(15)
            t1 = time.perf_counter()
            writers = [RasterWriter(staged.path("A"), info.width, info.height, st.p,
                                    band_names=st.names, **info.georef())]
            if ctx.wants("res"):
                writers.append(RasterWriter(staged.path("res"), info.width, info.height, 1,
                                            band_names=["reconstruction_rmse"], **info.georef()))

            def per_pixel(pix):
                A = fcls(pix, E)
                return [A, reconstruction_rmse(pix, A, E)]

            try:
                if opts.scheduler:
                    stats = _fcls_on_cluster(ctx, reader, E, writers, prog.sub(15, 95))
                else:
                    stats = stream_pixels(reader, writers, per_pixel, prog.sub(15, 95))
            except BaseException:
                for wr in writers:
                    wr.abort()
                raise
            for wr in writers:
                wr.close()
            timings["abundances_s"] = time.perf_counter() - t1 - stats.get("cluster_start_s", 0.0)
            if "cluster_start_s" in stats:
                timings["cluster_start_s"] = stats["cluster_start_s"]
        mean_rmse = stats["sum"] / stats["summed"] if stats["summed"] else None  # None: none was finite
        result = finish_outputs(ctx, staged, E, st.names, st.lib_match, st.angles, st.p, st.p_est, timings,
                                extra={"valid_pixels": stats["count"], "mean_reconstruction_rmse": mean_rmse,
                                       **check_solved(stats["count"], stats["unsolved"], ctx.input_path, prog),
                                       "distributed": stats.get("distributed")})
        staged.commit(prog)
    except BaseException:
        staged.abort()
        raise
    prog.set_progress(100)
    return result
