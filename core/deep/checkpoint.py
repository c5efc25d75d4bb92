"""DiffUnmix model files: tensors and plain configuration only.

A checkpoint is a ``torch.save`` of a dict holding tensors, numbers, strings
and lists — nothing else — and is always read with
``torch.load(weights_only=True)``, whose restricted unpickler refuses any other
object (so a file carrying a pickle payload is rejected without running it).
It records a schema version, the band count, band indices, wavelengths and
endmember names it was trained on, the model configs (JSON text) and weights.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ..errors import UnmixError
from ..io.atomic import atomic_write

SCHEMA = "diffunmix-checkpoint"
SCHEMA_VERSION = 1


def save_checkpoint(path: str, payload: dict[str, Any]) -> str:
    """Write a checkpoint atomically (temporary name, then rename).

    Args:
        path: destination ``.pt`` file.
        payload: ``state`` (dict of state dicts), ``meta`` (JSON-serialisable dict),
            ``E`` (P, B) array.

    Returns:
        The path written.
    """
    import torch

    meta = dict(payload["meta"])
    meta["schema"] = SCHEMA
    meta["schema_version"] = SCHEMA_VERSION
    obj = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "meta_json": json.dumps(meta, default=_plain),
        "E": torch.as_tensor(np.asarray(payload["E"], np.float32)),
        "state": {k: {n: t.detach().cpu() for n, t in sd.items()} for k, sd in payload["state"].items()},
    }
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise UnmixError(f"cannot write the model file: folder does not exist: {folder}")
    with atomic_write(path, "the model file ") as tmp:
        torch.save(obj, tmp)
    return path


def load_checkpoint(path: str) -> dict[str, Any]:
    """Read and validate a checkpoint without executing any code it may carry.

    Returns:
        dict with ``meta`` (dict), ``E`` (np.ndarray (P, B)), ``state`` (dict of state dicts).

    Raises:
        UnmixError: missing file, not a DiffUnmix checkpoint (pickle payloads
            included), truncated/corrupted, or an unsupported schema version.
    """
    import pickle
    import zipfile

    import torch

    if not os.path.isfile(path):
        raise UnmixError(f"model file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnmixError(f"not a valid DiffUnmix checkpoint (refused unsafe content): {path}") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, AttributeError,
            TypeError, KeyError, IndexError, UnicodeDecodeError) as exc:
        raise UnmixError(f"not a valid DiffUnmix checkpoint (unreadable or truncated): {path}") from exc
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
        raise UnmixError(f"not a valid DiffUnmix checkpoint: {path}")
    version = obj.get("schema_version")
    if version != SCHEMA_VERSION:
        raise UnmixError(f"unsupported DiffUnmix checkpoint version {version} (this version reads "
                         f"{SCHEMA_VERSION}): {path}")
    try:
        meta = json.loads(obj["meta_json"])
        E = obj["E"].numpy().astype(np.float64)
        state = obj["state"]
        if not isinstance(state, dict) or E.ndim != 2:
            raise ValueError("bad layout")
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise UnmixError(f"not a valid DiffUnmix checkpoint (missing or malformed fields): {path}") from exc
    return {"meta": meta, "E": E, "state": state}


def check_compatible(meta: dict, n_bands: int, wavelengths_nm, path: str, tol_nm: float = 1.0,
                     band_indices=None) -> None:
    """Refuse a raster whose bands do not match the ones the model was trained on: by wavelength
    when both sides have wavelengths, else by band number (``band_indices``, 0-based)."""
    if int(meta.get("bands", -1)) != int(n_bands):
        raise UnmixError(f"model {os.path.basename(path)} was trained on {meta.get('bands')} bands, "
                         f"the raster has {n_bands} (select the same bands with the band subset, --bands)")
    wl_model = meta.get("wavelengths_nm")
    trained_on = meta.get("band_indices")
    if (wl_model is None or wavelengths_nm is None) and band_indices is not None and trained_on is not None \
            and [int(b) for b in trained_on] != [int(b) for b in band_indices]:
        def ranges(idx):
            return _band_ranges([int(b) + 1 for b in idx])

        raise UnmixError(f"model {os.path.basename(path)} was trained on bands {ranges(trained_on)}, this "
                         f"selection is bands {ranges(band_indices)}, and without wavelengths on both sides "
                         f"the bands cannot be matched otherwise (select the same bands, --bands)")
    if wl_model is not None and wavelengths_nm is not None:
        diff = np.max(np.abs(np.asarray(wl_model, float) - np.asarray(wavelengths_nm, float)))
        if not np.isfinite(diff) or diff > tol_nm:
            raise UnmixError(f"model {os.path.basename(path)} was trained on other wavelengths "
                             f"(differ by up to {diff:.1f} nm)")


def _band_ranges(numbers) -> str:
    """[1, 2, 3, 7] → '1-3,7'."""
    out, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            out.append(f"{start}-{n}" if n != start else f"{n}")
            start = None
    return ",".join(out)


def _plain(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
