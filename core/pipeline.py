"""The one entry point the CLI and the QGIS plugin call: :func:`unmix`.

A dispatcher only: it checks the request, opens the input, builds the
:class:`core.run.context.RunContext` and hands it to the classical run
(:func:`core.run.classical.run_classical`) or the deep run
(:func:`core.deep.run.run_full`, imported only then: it needs torch). Runs never
call back here. Every output is staged under a temporary name and renamed only
when the whole run succeeded (:mod:`core.io.atomic`), so a failed or cancelled
run leaves nothing behind and never damages an existing file.
"""

from __future__ import annotations

import time
from typing import Optional

from .errors import UnmixError
from .options import UnmixOptions, require_torch
from .progress import ensure
from .run.context import RunContext
from .run.inputs import has_valid_pixel, no_valid_pixels, open_input
from .run.lock import outputs_locked
from .run.outputs import UnmixResult, check_outputs


def unmix(input_path: str, abundances_path: str, endmembers_path: str,
          options: Optional[UnmixOptions] = None, plot_path: Optional[str] = None,
          report_path: Optional[str] = None, residual_path: Optional[str] = None,
          progress=None, uncertainty_path: Optional[str] = None) -> UnmixResult:
    """Unmix a raster: endmember spectra and one abundance map per endmember.

    Args:
        input_path: any GDAL raster with ≥ 2 bands.
        abundances_path: output GeoTIFF, P Float32 bands named after the endmembers.
        endmembers_path: output CSV (``wavelength_nm`` or ``band`` + one column per endmember).
        options: :class:`UnmixOptions`.
        plot_path: optional PNG of the endmember spectra.
        report_path: optional JSON report.
        residual_path: optional GeoTIFF of the per-pixel reconstruction RMSE.
        uncertainty_path: GeoTIFF of the per-pixel std of each abundance over
            ``options.uncertainty`` stochastic DDIM refinements (full engine only).
        progress: progress/cancel protocol (:mod:`core.progress`).

    Raises:
        UnmixError: bad input (message is one line).
        Cancelled: the user cancelled; no output is left behind.
    """
    t0 = time.perf_counter()
    opts = options or UnmixOptions()
    opts.validate()
    prog = ensure(progress)
    outputs = {"A": abundances_path, "E": endmembers_path, "plot": plot_path, "report": report_path,
               "res": residual_path, "unc": uncertainty_path}
    check_outputs(list(outputs.values()), [input_path, opts.library, opts.model])
    with outputs_locked(outputs.values()):  # one run at a time per output folder (core.run.lock)
        return _unmix(input_path, outputs, opts, prog, t0)


def _unmix(input_path: str, outputs: dict, opts: UnmixOptions, prog, t0: float) -> UnmixResult:
    info, bands, wl, fwhm = open_input(input_path, opts.bands)
    if opts.endmembers and opts.endmembers >= len(bands):
        raise UnmixError(
            f"number of endmembers must be between 2 and {len(bands) - 1} for a raster with {len(bands)} bands, "
            f"got {opts.endmembers}")
    ctx = RunContext(input_path, outputs, opts, prog, info, bands, wl, fwhm, t0)
    if opts.method == "full" or opts.model:
        require_torch()
        if opts.model:  # a saved model samples nothing: refuse an empty raster before it runs
            from .io.raster import RasterReader

            with RasterReader(input_path, bands=bands) as reader:
                if not has_valid_pixel(reader, prog):
                    raise no_valid_pixels(reader, input_path, prog)
        from .deep.run import run_full  # torch is imported only here

        return run_full(ctx)
    from .run.classical import run_classical

    return run_classical(ctx)
