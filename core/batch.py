"""Whole archives: ``python -m core batch 'scenes/*.tif' --out DIR`` (:func:`run_batch`).

Every raster is unmixed as ``unmix`` does it (:func:`core.pipeline.unmix`) into ``DIR/<name>/``;
``DIR/batch.json`` lists each raster's status, time and scores and is rewritten (atomically) as
each one finishes, so it is current even if the batch is stopped. A raster that fails is recorded
and the others go on; a rerun skips the rasters whose outputs are complete.

Without a scheduler the rasters run one after another in this process. With one
(:mod:`core.run.distributed`), each raster of up to :data:`WHOLE_TASK_PIXELS` is one task (a
worker unmixes it in its own process and writes its folder: the workers must see ``DIR``); larger
rasters run from here, one after another, their tiles as tasks on the same cluster. A worker that
dies loses its running tasks only; the scheduler runs them again elsewhere.

Beside the dispatcher (it calls :func:`core.pipeline.unmix`), never imported by a run.
"""

from __future__ import annotations

import glob
import json
import os
import time
from dataclasses import asdict, replace
from typing import List, Optional

from .errors import Cancelled, UnmixError
from .io.atomic import atomic_write
from .options import UnmixOptions
from .progress import ensure
from .run.outputs import folder_outputs

#: rasters of up to this many pixels are one task each on a cluster; larger ones are split in tiles
WHOLE_TASK_PIXELS = 2048 * 2048


def find_rasters(patterns) -> List[str]:
    """The files matching the glob ``patterns`` (a string or a list), sorted, without repeats.

    Raises:
        UnmixError: nothing matches.
    """
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    found = []
    for pat in patterns:
        hits = sorted(glob.glob(os.path.expanduser(pat))) or ([pat] if os.path.isfile(pat) else [])
        found += [os.path.abspath(h) for h in hits if not os.path.isdir(h)]
    found = list(dict.fromkeys(found))
    if not found:
        raise UnmixError(f"no raster matches {' '.join(patterns)}")
    return found


def folder_names(paths: List[str]) -> List[str]:
    """One output folder name per raster: its file name without extension, ``name-2``… for repeats."""
    seen: dict = {}
    names = []
    for p in paths:
        stem = os.path.splitext(os.path.basename(p))[0] or "raster"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def is_complete(path: str, folder: str, residual: bool, uncertainty: bool) -> bool:
    """Whether ``folder`` holds every output of a finished run on ``path`` (its report names it)."""
    outs = folder_outputs(folder, residual, uncertainty)
    if not all(os.path.isfile(p) for p in outs.values() if p):
        return False
    try:
        with open(outs["report"], encoding="utf-8") as fh:
            return json.load(fh).get("input") == os.path.abspath(path)
    except (OSError, ValueError):
        return False


def unmix_one(path: str, folder: str, options: dict, residual: bool = False, progress=None) -> dict:
    """Unmix one raster into ``folder`` (created); never raises for bad input, returns its record.

    Args:
        options: :class:`UnmixOptions` as a dict (its scheduler: where its tiles run, or None).

    Returns:
        ``{"status": "done" | "failed", "time_s", "error"?, "scores"?, "pid"}``.
    """
    from .pipeline import unmix

    t0 = time.perf_counter()
    opts = UnmixOptions(**options)
    rec = {"pid": os.getpid()}
    try:
        os.makedirs(folder, exist_ok=True)
        outs = folder_outputs(folder, residual, bool(opts.uncertainty))
        res = unmix(path, outs["A"], outs["E"], opts, plot_path=outs["plot"], report_path=outs["report"],
                    residual_path=outs["res"], uncertainty_path=outs["unc"], progress=progress)
        rep = res.report
        rec.update(status="done", scores={k: rep.get(k) for k in ("endmember_count", "endmember_names",
                                                                  "valid_pixels", "mean_reconstruction_rmse")})
    except (Cancelled, KeyboardInterrupt):
        raise
    except (UnmixError, OSError, MemoryError, RuntimeError, ValueError) as exc:
        rec.update(status="failed", error=f"{type(exc).__name__}: {exc}" if not isinstance(exc, UnmixError)
                   else str(exc))
        try:
            os.rmdir(folder)  # a folder this failure left empty
        except OSError:
            pass
    rec["time_s"] = round(time.perf_counter() - t0, 3)
    return rec


def _raster_pixels(path: str) -> int:
    try:
        from .io.raster import read_info

        info = read_info(path)
        return info.width * info.height
    except (UnmixError, OSError, RuntimeError):
        return 0  # unreadable: a task of its own records the error


def run_batch(patterns, out_dir: str, options: Optional[UnmixOptions] = None, residual: bool = False,
              progress=None) -> dict:
    """Unmix every raster matching ``patterns`` into ``out_dir/<name>/`` (see module doc).

    Args:
        patterns: glob pattern(s) of the input rasters.
        out_dir: output folder (created).
        options: the options of every run; ``options.scheduler`` spreads them over a cluster.
        residual: also write ``residual.tif`` in each folder.
        progress: progress/cancel protocol; a cancel stops the batch (finished rasters stay).

    Returns:
        The content of ``out_dir/batch.json``: ``{"scheduler", "workers", "rasters": [record …],
        "counts": {status: n}, "total_s"}``.
    """
    t0 = time.perf_counter()
    opts = options or UnmixOptions()
    opts.validate()
    prog = ensure(progress)
    paths = find_rasters(patterns)
    os.makedirs(out_dir, exist_ok=True)
    names = folder_names(paths)
    uncertainty = bool(opts.uncertainty)
    records = [{"input": p, "output": os.path.join(os.path.abspath(out_dir), n), "status": "pending"}
               for p, n in zip(paths, names)]
    doc = {"scheduler": opts.scheduler, "workers": None, "options": asdict(opts), "rasters": records}

    def save():
        doc["counts"] = {s: sum(r["status"] == s for r in records) for s in sorted({r["status"] for r in records})}
        doc["total_s"] = round(time.perf_counter() - t0, 3)
        with atomic_write(os.path.join(out_dir, "batch.json")) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=2)

    todo = []
    for rec in records:
        if is_complete(rec["input"], rec["output"], residual, uncertainty):
            rec["status"] = "skipped"
            rec["note"] = "outputs complete from an earlier run"
        else:
            todo.append(rec)
    prog.info(f"{len(records)} raster(s): {len(todo)} to unmix, {len(records) - len(todo)} already complete")
    done = 0

    def finish(rec, result):
        nonlocal done
        rec.update(result)
        done += 1
        prog.set_progress(100.0 * done / max(len(todo), 1))
        prog.info(f"{os.path.basename(rec['input'])}: {rec['status']}"
                  + (f" ({rec['error']})" if rec.get("error") else f" in {rec['time_s']:.1f} s"))
        save()

    save()
    if not opts.scheduler:
        local = asdict(opts)
        for rec in todo:
            prog.check()
            finish(rec, unmix_one(rec["input"], rec["output"], local, residual, progress=prog.sub(0, 0)))
    else:
        _batch_on_cluster(todo, opts, residual, prog, finish, doc)
    save()
    return doc


def _batch_on_cluster(todo, opts: UnmixOptions, residual: bool, prog, finish, doc) -> None:
    """Small rasters as one task each, large ones from here with their tiles as tasks."""
    from .run.distributed import first_done, on_worker, session, worker_count

    with session(opts.scheduler, prog) as client:
        doc["workers"] = worker_count(client)
        whole = asdict(replace(opts, scheduler=None))  # a worker unmixes its raster in its own process
        small = [r for r in todo if _raster_pixels(r["input"]) <= WHOLE_TASK_PIXELS]
        large = [r for r in todo if r not in small]
        futures = {client.submit(on_worker, unmix_one, r["input"], r["output"], whole, residual, pure=False): r
                   for r in small}
        try:
            tiled = asdict(opts)
            for rec in large:  # the client fits (or loads), the cluster computes the tiles
                prog.check()
                finish(rec, {**unmix_one(rec["input"], rec["output"], tiled, residual, progress=prog.sub(0, 0)),
                             "tiles_on": opts.scheduler})
            while futures:
                for fut in first_done(list(futures), prog):
                    try:
                        result = fut.result()
                    except Exception as exc:  # the task itself failed (its worker lost too often, …)
                        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                    finish(futures.pop(fut), result)
        finally:
            if futures:
                client.cancel(list(futures), force=True)
