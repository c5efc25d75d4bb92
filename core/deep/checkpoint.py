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
    import warnings

    try:
        with warnings.catch_warnings():  # torch's hints (TorchScript archive, pickle protocol) are no use here
            warnings.simplefilter("ignore")
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
    try:
        validate(meta, E, state)
    except _Invalid as exc:
        raise UnmixError(f"not a valid DiffUnmix checkpoint ({exc}): {path}") from None
    return {"meta": meta, "E": E, "state": state}


# ------------------------------------------------------------------ validation
#: limits of what a checkpoint may declare (far above any model DiffUnmix fits; the defaults are
#: 1000 diffusion steps, 128-pixel tiles, a few hundred thousand parameters)
MAX_BANDS = 10000
MAX_ENDMEMBERS = 100
#: most endmember draws (block bootstrap) a checkpoint may carry
MAX_ENDMEMBER_DRAWS = 64
MAX_STEPS = 10000
MAX_PARAMETERS = 50_000_000
MAX_NAME_LENGTH = 200
#: (low, high) of the integer fields, by config class and field; other integers of a network's
#: config are sizes (channels, kernels, depths) within :data:`_SIZE`, of the fitting config counts
#: within :data:`_COUNT`
_INT_LIMITS = {
    ("EngineConfig", "num_steps"): (2, MAX_STEPS),
    ("EngineConfig", "tile"): (16, 4096),
    ("RefineConfig", "steps_2d"): (0, 1000),
    ("RefineConfig", "steps_1d"): (0, 1000),
    ("RefineConfig", "alternations"): (0, 20),
    ("FitConfig", "patch"): (4, 1024),
    ("FitConfig", "batch"): (1, 4096),
    ("HybridSTUConfig", "n3d"): (0, 32),
    ("HybridSTUConfig", "n2d"): (0, 32),
    ("ResUNet2DConfig", "n_res"): (0, 16),
    ("ResUNet1DConfig", "n_res"): (0, 16),
}
_SIZE = (0, 4096)
_COUNT = (0, 1_000_000)


class _Invalid(ValueError):
    """What is wrong with a checkpoint (words for the one-line error)."""


def _number(value, what: str, low: float, high: float, integer: bool = False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise _Invalid(f"{what} must be {'a whole number' if integer else 'a number'}, not {type(value).__name__}")
    # a Python int is finite at any size (np.isfinite refuses one beyond 64 bits)
    if not ((isinstance(value, int) or np.isfinite(value)) and low <= value <= high):
        raise _Invalid(f"{what} = {value!r} is outside {low:g}..{high:g}")
    return value


def _numbers(value, what: str, n: int, positive: bool = False) -> None:
    if not isinstance(value, list) or len(value) != n:
        raise _Invalid(f"{what} must be a list of {n} numbers")
    for v in value:
        _number(v, what, 1e-12 if positive else -1e300, 1e300)


def _check_config(cfg, name: str) -> None:
    """Every field of a config dataclass has its default's type and a sane range."""
    import dataclasses

    default = type(cfg)()
    kind = type(cfg).__name__
    for f in dataclasses.fields(cfg):
        value, ref, what = getattr(cfg, f.name), getattr(default, f.name), f"{name}.{f.name}"
        if isinstance(ref, bool):
            if not isinstance(value, bool):
                raise _Invalid(f"{what} must be true or false")
        elif isinstance(ref, int):
            low, high = _INT_LIMITS.get((kind, f.name), _COUNT if kind == "FitConfig" else _SIZE)
            _number(value, what, low, high, integer=True)
        elif isinstance(ref, float):
            _number(value, what, -1e6, 1e6)
        elif isinstance(ref, str):
            if not isinstance(value, str) or len(value) > 64:
                raise _Invalid(f"{what} must be a short text")
        elif isinstance(ref, tuple):
            if not isinstance(value, tuple) or not 1 <= len(value) <= 8:
                raise _Invalid(f"{what} must be a list of 1 to 8 whole numbers")
            for v in value:
                _number(v, what, 1, 64, integer=True)


def validate(meta, E: np.ndarray, state) -> None:
    """Check a checkpoint's metadata, configuration and weights before any network is built.

    Every field is checked for type and range (band count, names, wavelengths, scale,
    every config field: sizes, steps, tile), then the networks the config declares are
    laid out on PyTorch's ``meta`` device (shapes only, no memory) and their parameter
    count and every tensor's shape must match the tensors actually in the file; weights
    and endmembers must be finite. A file declaring a huge network is refused here,
    without allocating it.

    Args:
        meta: the decoded ``meta_json`` (dict).
        E: endmembers (P, B).
        state: ``{"hybrid", "unet2d", "unet1d"}`` state dicts of tensors.

    Raises:
        _Invalid: with the reason.
    """
    import torch

    if not isinstance(meta, dict):
        raise _Invalid("its metadata is not a dictionary")
    b = _number(meta.get("bands"), "bands", 3, MAX_BANDS, integer=True)
    p = E.shape[0]
    if E.shape[1] != b or not 2 <= p < b or p > MAX_ENDMEMBERS:
        raise _Invalid(f"endmembers of shape {E.shape[0]}x{E.shape[1]} for {b} bands")
    if not np.all(np.isfinite(E)):
        raise _Invalid("its endmembers hold NaN or infinite values")
    names = meta.get("names")
    if not isinstance(names, list) or len(names) != p or not all(
            isinstance(n, str) and 0 < len(n) <= MAX_NAME_LENGTH for n in names):
        raise _Invalid(f"names must be a list of {p} texts, one per endmember")
    scale = _number(meta.get("scale"), "scale", 1e-30, 1e30)
    if scale <= 0:
        raise _Invalid("scale must be positive")
    if meta.get("band_indices") is not None:
        idx = meta["band_indices"]
        if not isinstance(idx, list) or len(idx) != b:
            raise _Invalid(f"band_indices must be a list of {b} band numbers")
        for i in idx:
            _number(i, "band_indices", 0, 10**6, integer=True)
    if meta.get("wavelengths_nm") is not None:
        _numbers(meta["wavelengths_nm"], "wavelengths_nm", b, positive=True)
    noise = meta.get("noise_sigma", [])
    if noise:
        _numbers(noise, "noise_sigma", b)
    draws = meta.get("endmember_draws")
    if draws is not None:
        try:
            d = np.asarray(draws, np.float64)
        except (ValueError, TypeError):
            raise _Invalid("endmember_draws must be a list of endmember sets") from None
        if d.ndim != 3 or d.shape[1:] != E.shape or not 2 <= d.shape[0] <= MAX_ENDMEMBER_DRAWS:
            raise _Invalid(f"endmember_draws must be 2 to {MAX_ENDMEMBER_DRAWS} sets of {p}x{b} spectra")
        if not np.all(np.isfinite(d)) or bool((d < 0).any()):
            raise _Invalid("its endmember draws hold negative, NaN or infinite values")
    stages = meta.get("stages", [])
    if not isinstance(stages, list) or not all(isinstance(s, str) for s in stages):
        raise _Invalid("stages must be a list of texts")
    if not isinstance(state, dict) or set(state) != {"hybrid", "unet2d", "unet1d"} or not all(
            isinstance(sd, dict) and all(isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in sd.items())
            for sd in state.values()):
        raise _Invalid("its weights are not the three networks' tensors")
    present = sum(t.numel() for sd in state.values() for t in sd.values())
    if present > MAX_PARAMETERS:
        raise _Invalid(f"{present} weights, more than {MAX_PARAMETERS}")
    expected = _expected_shapes(meta.get("config"), b, E)
    for net, shapes in expected.items():
        got = {k: tuple(t.shape) for k, t in state[net].items()}
        if got != shapes:
            n_exp = sum(int(np.prod(s)) for s in shapes.values())
            n_got = sum(int(np.prod(s)) for s in got.values())
            raise _Invalid(f"its config declares a {net} network of {n_exp} parameters, the file holds {n_got}"
                           if n_exp != n_got else f"the {net} weights do not match its config")
    for sd in state.values():
        for t in sd.values():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise _Invalid("its weights hold NaN or infinite values")


def _expected_shapes(config, b: int, E: np.ndarray) -> dict:
    """Tensor shapes of the three networks ``config`` declares, laid out on the ``meta`` device."""
    import torch

    from .engine import Engine, EngineConfig, RefineConfig
    from .models import HybridSTUConfig, ResUNet1DConfig, ResUNet2DConfig
    from .training import FitConfig

    if not isinstance(config, dict) or not all(
            isinstance(config.get(k, {}), dict) for k in ("hybrid", "unet2d", "unet1d", "fit", "refine")):
        raise _Invalid("its config is not a dictionary of dictionaries")
    try:
        cfg = EngineConfig.from_dict(config)
        parts = {"hybrid": HybridSTUConfig.from_dict(cfg.hybrid), "unet2d": ResUNet2DConfig.from_dict(cfg.unet2d),
                 "unet1d": ResUNet1DConfig.from_dict(cfg.unet1d), "fit": FitConfig.from_dict(cfg.fit),
                 "refine": RefineConfig.from_dict(cfg.refine)}
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise _Invalid(f"config: {' '.join(str(exc).split())[:120]}") from None
    _check_config(cfg, "config")
    for name, part in parts.items():
        _check_config(part, f"config.{name}")
    if not 0 <= cfg.overlap <= cfg.tile // 2:
        raise _Invalid(f"config.overlap = {cfg.overlap} must be between 0 and half the tile ({cfg.tile // 2})")
    for which in ("2d", "1d"):
        start = getattr(parts["refine"], f"start_{which}")
        if not 0 <= start < cfg.num_steps:
            raise _Invalid(f"config.refine.start_{which} = {start} must be below num_steps ({cfg.num_steps})")
    try:
        with torch.device("meta"):  # shapes only: nothing is allocated, whatever the sizes
            eng = Engine(b, E, ["e"] * E.shape[0], cfg, 1.0, "meta")
    except (TypeError, ValueError, RuntimeError, ZeroDivisionError, IndexError) as exc:
        raise _Invalid(f"config: {' '.join(str(exc).split())[:120]}") from None
    return {k: {n: tuple(t.shape) for n, t in sd.items()} for k, sd in eng.state().items()}


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
