"""Engine command line: ``python -m core <command> …`` (run from the repo root).

Exit status 0 on success, 2 with one line on stderr for bad input (and for an
output the system refused to write: disk full, quota), 130 when cancelled
(Ctrl-C). See docs/DESIGN.md for the contract of ``unmix``/``train``/``apply``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import List, Optional

from .errors import Cancelled, UnmixError
from .options import DEVICES, EXTRACT_METHODS, FAMILIES, METHODS, NOISE_KINDS, QUALITIES, STAGES


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors on one line with exit status 2."""

    def error(self, message):  # noqa: D401
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def _count(text: str) -> int:
    """A non-negative integer (argparse names the type after this function: "invalid count value")."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 0, got '{text}'") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 0, got {text}")
    return v


def _common_raster(p):
    p.add_argument("input", help="input raster (GeoTIFF, ENVI, VRT or any GDAL raster)")
    p.add_argument("--bands", default=None,
                   help="1-based band subset, e.g. '1-100,120-150' (default: all bands); bands the ENVI "
                        "bbl flags bad are always left out")
    p.add_argument("--seed", type=_count, default=0, help="random seed ≥ 0 (default 0)")


def _device_quality(p, quality: bool = True) -> None:
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="auto (default): CUDA when a GPU is present, else CPU")
    if quality:
        p.add_argument("--quality", choices=QUALITIES, default="default",
                       help="fitting preset trading time for accuracy (default: default)")


def _endmember_count(p, help_text: str = "P (default 0 = estimate with HySime, at most 20)") -> None:
    p.add_argument("--endmembers", "-p", type=_count, default=0, help=help_text)


def _result_extras(p) -> None:
    p.add_argument("--uncertainty", type=_count, default=0,
                   help="N ≥ 2 stochastic refinements → OUTDIR/uncertainty.tif (per-pixel std; full engine)")
    p.add_argument("--residual", action="store_true", help="also write OUTDIR/residual.tif")
    _quiet(p)


def _scheduler(p) -> None:
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the tiles (batch: the rasters) on a Dask cluster: local[:N] (N single-thread worker "
                        "processes here) or tcp://HOST:PORT (an existing scheduler); default: in this process")


def _quiet(p) -> None:
    p.add_argument("--quiet", "-q", action="store_true", help="no progress messages (warnings still shown)")


def _add_synth(sub) -> None:
    s = sub.add_parser("synth", help="generate a synthetic scene with known truth",
                       description="Generate a synthetic scene (scene.tif, truth_abundances.tif, "
                                   "truth_endmembers.csv, scene.json) from a spectral library.")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--height", type=int, default=64, help="rows (default 64)")
    s.add_argument("--width", type=int, default=64, help="columns (default 64)")
    s.add_argument("--endmembers", "-p", type=int, default=4, help="number of endmembers P (default 4)")
    s.add_argument("--family", choices=FAMILIES, default="grf",
                   help="spatial family of the abundance maps (default grf: Gaussian random fields)")
    s.add_argument("--purity", type=float, default=0.5, help="0..1, higher = more near-pure pixels (default 0.5)")
    s.add_argument("--snr", type=float, default=30.0, help="signal-to-noise ratio in dB (<=0: no noise; default 30)")
    s.add_argument("--noise", choices=NOISE_KINDS, default="white", help="noise kind (default white)")
    s.add_argument("--illumination", type=float, default=0.0,
                   help="std of per-pixel illumination scaling (default 0 = none)")
    s.add_argument("--variability", type=float, default=0.0,
                   help="within-material spectral variability (log-std per band, e.g. 0.05; 0 = none)")
    s.add_argument("--min-angle", type=float, default=10.0, help="minimum angle between endmembers (deg, default 10)")
    s.add_argument("--library", default=None, help="spectral library (.sli/.hdr or .csv); default: bundled")
    s.add_argument("--seed", type=_count, default=0, help="random seed ≥ 0 (default 0)")


def _add_classical(sub) -> None:
    c = sub.add_parser("count", help="estimate the number of endmembers (HySime)",
                       description="Estimate the number of endmembers with HySime and print it.")
    _common_raster(c)
    c.add_argument("--json", action="store_true", help="print a JSON object instead of the number")

    e = sub.add_parser("extract", help="extract endmembers (VCA, noise-robust or library-guided) to CSV",
                       description="Extract P endmember spectra with VCA, with the engine's noise-robust "
                                   "estimator, or choose them from a library.")
    _common_raster(e)
    _endmember_count(e)
    e.add_argument("--out", required=True, help="output CSV")
    e.add_argument("--library", default=None, help="library used to name (or select) the endmembers")
    e.add_argument("--method", choices=EXTRACT_METHODS, default="vca",
                   help="vca (default): the purest pixels; robust: denoised VCA, then minimum volume or representative "
                        "spectra (slower, more accurate); library: choose P library spectra")

    f = sub.add_parser("fcls", help="abundances for given endmembers (FCLS)",
                       description="Fully constrained least squares abundances for an endmember CSV.")
    _common_raster(f)
    f.add_argument("--endmembers-csv", required=True, help="endmember CSV (as written by extract/unmix)")
    f.add_argument("--out", required=True, help="output abundance GeoTIFF")

    v = sub.add_parser("evaluate", help="score results against a reference",
                       description="Scores: aRMSE, RMSE, SAD (matched by the Hungarian method), "
                                   "reconstruction PSNR.")
    v.add_argument("--abundances", help="estimated abundance raster")
    v.add_argument("--reference-abundances", help="reference abundance raster")
    v.add_argument("--endmembers", help="estimated endmember CSV")
    v.add_argument("--reference-endmembers", help="reference endmember CSV")
    v.add_argument("--input", help="input raster, for the reconstruction error")
    v.add_argument("--json", default=None, help="also write the scores to this JSON file")


def _add_engine(sub) -> None:
    u = sub.add_parser("unmix", help="unmix a raster (endmembers + abundances)",
                       description="Unmix a raster: writes OUTDIR/abundances.tif, endmembers.csv, "
                                   "endmembers.png, report.json.")
    _common_raster(u)
    _endmember_count(u)
    u.add_argument("--out", required=True, help="output folder")
    u.add_argument("--library", default=None, help="spectral library to name endmembers / guide the engine")
    u.add_argument("--model", default=None, help="apply a saved model (checkpoint) instead of fitting")
    u.add_argument("--method", choices=METHODS, default=None,
                   help="full: HybridSTU + diffusion engine (default); vca-fcls: classical baseline")
    _device_quality(u)
    _result_extras(u)
    _scheduler(u)

    t = sub.add_parser("train", help="fit the engine to a raster and save the model",
                       description="Fit HybridSTU, the abundance diffusion and the endmember diffusion to a "
                                   "raster (semi-blind, or supervised with --reference-abundances) and save "
                                   "a checkpoint for 'apply'.")
    _common_raster(t)
    _endmember_count(t)
    t.add_argument("--out", required=True, help="output model file (.pt)")
    t.add_argument("--library", default=None, help="spectral library (names; spectra for the 1D diffusion)")
    t.add_argument("--reference-abundances", default=None, help="reference abundance raster (supervised)")
    t.add_argument("--stage", choices=("all",) + STAGES,
                   default="all", help="fit one network only (default all three in order); a later one needs "
                                       "--resume from a checkpoint whose earlier ones are fitted")
    t.add_argument("--resume", default=None, metavar="MODEL",
                   help="go on from this checkpoint (same bands): keep its endmembers and fitted networks, "
                        "fit --stage (further) on this raster")
    _device_quality(t)
    _quiet(t)

    y = sub.add_parser("apply", help="apply a saved model to a raster",
                       description="Apply a saved model to a raster of the same sensor: writes the same "
                                   "outputs as unmix, with the model's endmembers.")
    _common_raster(y)
    y.add_argument("--model", required=True, help="model file written by 'train'")
    y.add_argument("--out", required=True, help="output folder")
    y.add_argument("--library", default=None, help="library used to name the endmembers")
    _device_quality(y, quality=False)
    _result_extras(y)
    _scheduler(y)

    b = sub.add_parser("batch", help="unmix many rasters (an archive), resumable",
                       description="Unmix every raster matching the patterns into OUTDIR/<name>/ (as unmix "
                                   "writes them) and list each one's status, time and scores in "
                                   "OUTDIR/batch.json. A raster that fails is recorded and the others go on; "
                                   "a rerun skips rasters whose outputs are complete.")
    b.add_argument("inputs", nargs="+", help="rasters or glob patterns (quote them: 'scenes/*.tif')")
    b.add_argument("--out", required=True, help="output folder")
    b.add_argument("--model", default=None, help="apply this saved model to every raster instead of fitting")
    b.add_argument("--method", choices=METHODS, default=None, help="as unmix (default full)")
    b.add_argument("--library", default=None, help="spectral library to name endmembers / guide the engine")
    b.add_argument("--bands", default=None, help="1-based band subset (as unmix)")
    b.add_argument("--seed", type=_count, default=0, help="random seed ≥ 0 (default 0)")
    _endmember_count(b)
    _device_quality(b)
    _result_extras(b)
    _scheduler(b)


def build_parser() -> argparse.ArgumentParser:
    prog = "diffunmix" if os.path.basename(sys.argv[0] or "") == "diffunmix" else "python -m core"  # pip's script
    ap = _Parser(prog=prog, description="DiffUnmix engine: hyperspectral unmixing.")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_synth(sub)
    _add_classical(sub)
    _add_engine(sub)
    for p in sub.choices.values():
        p.add_argument("--verbose", "-v", action="store_true",
                       help="also show GDAL's own messages (warnings, debug) on stderr")
    return ap


def _cmd_synth(a) -> int:
    from .run.tasks import synthesize

    out = synthesize(a.out, height=a.height, width=a.width, p=a.endmembers, family=a.family, purity=a.purity,
                     snr_db=a.snr, noise=a.noise, illumination=a.illumination, min_angle_deg=a.min_angle,
                     seed=a.seed, variability=a.variability, library=a.library)
    for k, v in out["paths"].items():
        if isinstance(v, str):
            print(f"{k}: {v}")
    return 0


def _cmd_count(a) -> int:
    from .run.tasks import count_endmembers

    res = count_endmembers(a.input, bands=a.bands, seed=a.seed)
    if res["warning"]:
        print(f"warning: {res['warning']}", file=sys.stderr)
    if a.json:
        print(json.dumps(res))
    else:
        print(res["endmembers"])
    return 0


def _cmd_extract(a) -> int:
    from .run.tasks import extract_endmembers

    res = extract_endmembers(a.input, a.out, p=a.endmembers, library=a.library, method=a.method,
                             bands=a.bands, seed=a.seed)
    print(f"{res['p']} endmembers → {a.out}: {', '.join(res['names'])}")
    if "mixing_model" in res:
        print(f"mixing model: {res['mixing_model']}; energy outside the endmembers' subspace "
              f"{res['model_excess']:.2f}× noise")
    return 0


def _cmd_fcls(a) -> int:
    from .run.tasks import fcls_raster

    res = fcls_raster(a.input, a.endmembers_csv, a.out, bands=a.bands)
    print(f"abundances ({res['p']} bands) → {a.out}")
    return 0


def _cmd_evaluate(a) -> int:
    from .run.tasks import evaluate_files

    scores = evaluate_files(a.abundances, a.reference_abundances, a.endmembers, a.reference_endmembers,
                            input_path=a.input, json_path=a.json)
    for k, val in scores.items():
        if isinstance(val, float):
            print(f"{k:32s} {val:.5f}")
        elif isinstance(val, (list, dict)):
            print(f"{k:32s} {json.dumps(val)}")
        else:
            print(f"{k:32s} {val}")
    return 0


def _run_unmix(a, method: str, model=None, quality: str = "default", endmembers: int = 0) -> int:
    from .io.raster import check_output_dir
    from .options import UnmixOptions
    from .run.lock import folder_lock

    opts = UnmixOptions(endmembers=endmembers, method=method, library=a.library, model=model,
                        device=a.device, seed=a.seed, bands=a.bands, quality=quality,
                        uncertainty=a.uncertainty, scheduler=a.scheduler)
    opts.validate()
    check_output_dir(a.out)
    with folder_lock(a.out):  # held until the stale optional outputs below are gone (core/run/lock.py)
        return _unmix_locked(a, opts)


def _unmix_locked(a, opts) -> int:
    from .io.atomic import remove_quietly
    from .pipeline import unmix
    from .progress import ConsoleProgress
    from .run.outputs import folder_outputs

    outs = folder_outputs(a.out, a.residual, bool(a.uncertainty))
    res = unmix(a.input, outs["A"], outs["E"], opts, plot_path=outs["plot"], report_path=outs["report"],
                residual_path=outs["res"], uncertainty_path=outs["unc"], progress=ConsoleProgress(quiet=a.quiet))
    # OUTDIR holds the last run's result: an optional output an earlier run left there and this one
    # did not write would be taken for part of it
    every = folder_outputs(a.out, True, True)
    remove_quietly(*(every[k] for k in ("res", "unc") if not outs[k]))
    print(f"{res.p} endmembers ({', '.join(res.names)}) → {a.out}")
    return 0


def _cmd_unmix(a) -> int:
    return _run_unmix(a, a.method or "full", model=a.model, quality=a.quality, endmembers=a.endmembers)


def _cmd_apply(a) -> int:
    return _run_unmix(a, "full", model=a.model)


def _cmd_batch(a) -> int:
    from .batch import run_batch
    from .options import UnmixOptions
    from .progress import ConsoleProgress

    opts = UnmixOptions(endmembers=a.endmembers, method=a.method or "full", library=a.library, model=a.model,
                        device=a.device, seed=a.seed, bands=a.bands, quality=a.quality,
                        uncertainty=a.uncertainty, scheduler=a.scheduler)
    doc = run_batch(a.inputs, a.out, opts, residual=a.residual, progress=ConsoleProgress(quiet=a.quiet))
    counts = ", ".join(f"{n} {s}" for s, n in doc["counts"].items())
    print(f"{len(doc['rasters'])} raster(s): {counts} → {os.path.join(a.out, 'batch.json')}")
    return 0 if not doc["counts"].get("failed") else 1


def _cmd_train(a) -> int:
    from .options import UnmixOptions, require_torch
    from .progress import ConsoleProgress

    require_torch()
    from .deep.run import train_model

    opts = UnmixOptions(endmembers=a.endmembers, method="full", library=a.library, device=a.device,
                        seed=a.seed, bands=a.bands, quality=a.quality)
    engine, fit = train_model(a.input, a.out, opts, progress=ConsoleProgress(quiet=a.quiet),
                              reference_abundances=a.reference_abundances,
                              stages=STAGES if a.stage == "all" else (a.stage,), resume=a.resume)
    t = fit.timings
    print(f"model with {engine.P} endmembers ({', '.join(engine.names)}) → {a.out} "
          f"(fitting {t.get('fitting_s', 0):.1f} s; fitted: {', '.join(engine.trained)})")
    return 0


COMMANDS = {"synth": _cmd_synth, "count": _cmd_count, "extract": _cmd_extract, "fcls": _cmd_fcls,
            "evaluate": _cmd_evaluate, "unmix": _cmd_unmix, "train": _cmd_train, "apply": _cmd_apply,
            "batch": _cmd_batch}


def _limit_gdal_cache(megabytes: int = 256) -> None:
    """GDAL caches read blocks up to 5 % of RAM by default, which dominates the CLI's memory.

    Streaming reads never revisit a block, so a small cache costs nothing; an
    explicit ``GDAL_CACHEMAX`` in the environment wins. (QGIS manages its own cache.)
    """
    if "GDAL_CACHEMAX" in os.environ:
        return
    try:
        from osgeo import gdal

        gdal.SetCacheMax(megabytes * 1024 * 1024)
    except ImportError:  # the rasterio backend: its GDAL reads the variable
        os.environ["GDAL_CACHEMAX"] = str(megabytes)


#: commands whose --out is a folder (the others write --out as a file)
_FOLDER_OUTPUTS = ("synth", "unmix", "apply", "batch")


def _missing_folders(args) -> List[str]:
    """Output folders this command may create that do not exist yet, deepest first."""
    target = getattr(args, "out", None) if args.command != "evaluate" else args.json
    if not target:
        return []
    folder = os.path.abspath(target if args.command in _FOLDER_OUTPUTS else os.path.dirname(os.path.abspath(target)))
    missing = []
    while folder and not os.path.exists(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return missing


def _remove_empty(folders: List[str]) -> None:
    """Remove the folders a failed run created, if they are still empty (deepest first)."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:  # not empty (or already gone): leave it
            pass


#: GDAL's messages go to this logger (shown on stderr with --verbose only)
GDAL_LOG = logging.getLogger("diffunmix.gdal")
_gdal_handler = None  # kept referenced: GDAL calls it from C


def _route_gdal_messages(verbose: bool) -> None:
    """Send GDAL's warnings and errors through :data:`GDAL_LOG` instead of stderr, so a bad input
    gives our one line (GDAL's own message is in it where it matters); ``--verbose`` shows them."""
    global _gdal_handler
    GDAL_LOG.setLevel(logging.DEBUG if verbose else logging.CRITICAL + 1)
    rasterio_log = logging.getLogger("rasterio")  # the rasterio backend logs GDAL's messages there
    rasterio_log.setLevel(logging.DEBUG if verbose else logging.CRITICAL + 1)
    rasterio_log.propagate = False
    if verbose and not GDAL_LOG.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("GDAL %(levelname)s: %(message)s"))
        GDAL_LOG.addHandler(h)
        rasterio_log.addHandler(h)
    if _gdal_handler is not None:
        return
    try:
        from osgeo import gdal
    except ImportError:
        return
    levels = {gdal.CE_Debug: logging.DEBUG, gdal.CE_Warning: logging.WARNING, gdal.CE_Failure: logging.ERROR,
              gdal.CE_Fatal: logging.CRITICAL}

    def handler(err_class, err_no, message):
        GDAL_LOG.log(levels.get(err_class, logging.INFO), "%s", str(message).strip())

    _gdal_handler = handler
    gdal.PushErrorHandler(handler)


#: path arguments that must not be empty ('' would mean the current folder or no file at all)
_PATH_ARGS = ("input", "out", "library", "model", "resume", "endmembers_csv", "reference_abundances",
              "abundances", "reference_endmembers", "json")


class _Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread so the run cleans up as after Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_signalled(signum, frame):
    import signal

    signal.signal(signum, signal.SIG_IGN)  # a repeated signal does not interrupt the clean-up
    raise _Signalled(signum)


def _install_signal_handlers() -> dict:
    """SIGTERM and SIGHUP clean up like Ctrl-C (exit 143 / 129); returns the handlers they replace."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    old = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:  # nohup's SIGHUP stays ignored
            old[sig] = signal.signal(sig, _raise_signalled)
    return old


def _route_python_warnings(verbose: bool) -> None:
    """Library warnings (numpy overflow, matplotlib glyphs, torch) go to logging, shown with --verbose:
    a bad input gives our one line; our own warnings are printed as ``warning: …`` lines."""
    logging.captureWarnings(True)
    log = logging.getLogger("py.warnings")
    log.setLevel(logging.WARNING if verbose else logging.CRITICAL + 1)
    log.propagate = False
    if verbose and not log.handlers:
        log.addHandler(logging.StreamHandler(sys.stderr))


def main(argv: Optional[List[str]] = None) -> int:
    """Run the CLI; returns the exit status."""
    _limit_gdal_cache()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, one line already printed)
        return int(exc.code or 0)
    empty = [n for n in _PATH_ARGS if getattr(args, n, None) is not None and not str(getattr(args, n)).strip()]
    if empty:
        what = "the input path" if empty[0] == "input" else "--" + empty[0].replace("_", "-")
        print(f"error: {what} is empty: give a file or folder name", file=sys.stderr)
        return 2
    _route_gdal_messages(getattr(args, "verbose", False))
    _route_python_warnings(getattr(args, "verbose", False))
    created = _missing_folders(args)
    status = 1
    old_handlers = _install_signal_handlers()
    try:
        status = _dispatch(args)
        return status
    except _Signalled as exc:  # arrived after _dispatch returned, during the clean-up
        status = 128 + exc.signum
        return status
    finally:
        try:
            if status != 0:
                _remove_empty(created)
        finally:
            import signal

            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)


def _dispatch(args) -> int:
    """Run one parsed command; map errors to exit codes and one line on stderr."""
    try:
        return COMMANDS[args.command](args)
    except UnmixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except _Signalled as exc:
        import signal

        print(f"terminated ({signal.Signals(exc.signum).name})", file=sys.stderr)
        return 128 + exc.signum
    except (Cancelled, KeyboardInterrupt):
        print("cancelled", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory: try a band subset (--bands), a smaller raster, or free memory", file=sys.stderr)
        return 2
    except OSError as exc:  # the system refused a read or write (disk full, quota, I/O error)
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # torch's out of memory (CPU allocator or CUDA) is a RuntimeError
        if "out of memory" in str(exc).lower() or "can't allocate memory" in str(exc).lower():
            print("error: out of memory: try a band subset (--bands), a smaller raster, --device cpu, or free memory",
                  file=sys.stderr)
            return 2
        raise
