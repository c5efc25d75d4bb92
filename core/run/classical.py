"""The classical run: VCA endmembers (library-named), FCLS abundances streamed window by
window from and to disk, then the endmember CSV, plot and report."""

from __future__ import annotations

import time

from ..classical.fcls import fcls
from ..io.raster import RasterReader, RasterWriter
from .context import RunContext
from .inputs import stream_pixels
from .outputs import UnmixResult, check_solved, finish_outputs, reconstruction_rmse
from .start import estimate_start


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
                stats = stream_pixels(reader, writers, per_pixel, prog.sub(15, 95))
            except BaseException:
                for wr in writers:
                    wr.abort()
                raise
            for wr in writers:
                wr.close()
            timings["abundances_s"] = time.perf_counter() - t1
        mean_rmse = stats["sum"] / stats["summed"] if stats["summed"] else None  # None: none was finite
        result = finish_outputs(ctx, staged, E, st.names, st.lib_match, st.angles, st.p, st.p_est, timings,
                                extra={"valid_pixels": stats["count"], "mean_reconstruction_rmse": mean_rmse,
                                       **check_solved(stats["count"], stats["unsolved"], ctx.input_path, prog)})
        staged.commit(prog)
    except BaseException:
        staged.abort()
        raise
    prog.set_progress(100)
    return result
