"""Hostile model files (issue 16, defects 4-6): a checkpoint whose config declares huge networks or
diffusion steps, malformed metadata, a zero or NaN scale, NaN endmembers or weights. Each is refused
with one line (exit 2) before any network is built, and nothing is written.

Helpers: hostile_util.py; fixtures: conftest.py beside this file."""

import json
import os
import resource
import time

import numpy as np
import pytest
import torch
from hostile_util import refused

from core.deep.checkpoint import load_checkpoint
from core.errors import UnmixError


def _tampered(model, tmp_path, name="bad.pt", meta=None, config=None, E=None, state=None):
    """A copy of the real checkpoint ``model`` with its metadata, config, endmembers or weights changed:
    ``meta``/``config`` are functions changing the decoded dicts in place (or returning a replacement)."""
    obj = torch.load(model, map_location="cpu", weights_only=True)
    m = json.loads(obj["meta_json"])
    if config is not None:
        m["config"] = config(m["config"]) or m["config"]
    if meta is not None:
        m = meta(m) or m
    obj["meta_json"] = json.dumps(m)
    if E is not None:
        obj["E"] = torch.as_tensor(E(obj["E"].numpy().copy()))
    if state is not None:
        state(obj["state"])
    path = tmp_path / name
    torch.save(obj, path)
    return path


def _set(d, key, value):
    d[key] = value


HUGE = {  # what a 2.5 MB file once declared, and worse: refused without allocating
    "ResUNet2D base 2048": lambda c: _set(c["unet2d"], "base", 2048),
    "ResUNet2D base 512": lambda c: _set(c["unet2d"], "base", 512),
    "num_steps 1e11": lambda c: _set(c, "num_steps", 100_000_000_000),
    "HybridSTU c2d 4096": lambda c: _set(c["hybrid"], "c2d", 4096),
    "1000 residual blocks": lambda c: _set(c["unet2d"], "n_res", 1000),
    "mults of 64 levels": lambda c: _set(c["unet2d"], "mults", [1] * 64),
}


@pytest.mark.parametrize("case", sorted(HUGE))
def test_huge_declared_networks_are_refused_before_allocation(case, model, scene, tmp_path, capsys):
    bad = _tampered(model, tmp_path, config=HUGE[case])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(UnmixError, match="not a valid DiffUnmix checkpoint"):
        load_checkpoint(str(bad))
    assert time.perf_counter() - t0 < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 300_000  # kB: nothing was built
    out = tmp_path / "out"
    refused(["apply", scene[0], "--model", bad, "--out", out, "-q"], capsys, "not a valid DiffUnmix checkpoint")
    assert not out.exists()


MALFORMED = {  # each once gave a traceback (exit 1) or garbage with exit 0
    "band list as a string": dict(meta=lambda m: _set(m, "band_indices", "1-20")),
    "metadata as a list": dict(meta=lambda m: [1, 2, 3]),
    "names count != P": dict(meta=lambda m: _set(m, "names", ["a", "b"])),
    "names not texts": dict(meta=lambda m: _set(m, "names", [1, 2, 3])),
    "wavelengths as a string": dict(meta=lambda m: _set(m, "wavelengths_nm", "450-2400")),
    "wavelengths too short": dict(meta=lambda m: _set(m, "wavelengths_nm", [450.0, 500.0])),
    "bands as a string": dict(meta=lambda m: _set(m, "bands", "20")),
    "tile size 0": dict(config=lambda c: _set(c, "tile", 0)),
    "tile size negative": dict(config=lambda c: _set(c, "tile", -128)),
    "overlap larger than the tile": dict(config=lambda c: _set(c, "overlap", 500)),
    "config as a list": dict(meta=lambda m: _set(m, "config", [1])),
    "unet2d config a string": dict(config=lambda c: _set(c, "unet2d", "big")),
    "DDIM steps negative": dict(config=lambda c: _set(c["refine"], "steps_2d", -3)),
    "refinement start beyond the schedule": dict(config=lambda c: _set(c["refine"], "start_2d", 5000)),
    "a float where sizes are whole numbers": dict(config=lambda c: _set(c["unet2d"], "base", 8.5)),
    "scale 0": dict(meta=lambda m: _set(m, "scale", 0.0)),
    "scale NaN": dict(meta=lambda m: _set(m, "scale", float("nan"))),
    "scale negative": dict(meta=lambda m: _set(m, "scale", -1.0)),
    "endmember draws of the wrong shape": dict(meta=lambda m: _set(m, "endmember_draws", [[[0.1, 0.2]]] * 3)),
    "endmember draws as a string": dict(meta=lambda m: _set(m, "endmember_draws", "many")),
    "NaN endmember draws": dict(meta=lambda m: _set(m, "endmember_draws", np.full(
        np.shape(m["endmember_draws"]), np.nan).tolist())),
    "negative endmember draws": dict(meta=lambda m: _set(m, "endmember_draws", (
        -np.asarray(m["endmember_draws"])).tolist())),
    "NaN endmembers": dict(E=lambda e: np.full_like(e, np.nan)),
    "infinite endmember value": dict(E=lambda e: (e.__setitem__((0, 0), np.inf), e)[1]),
    "NaN weights": dict(state=lambda s: s["unet2d"][next(iter(s["unet2d"]))].fill_(float("nan"))),
    "a weight tensor missing": dict(state=lambda s: s["hybrid"].pop(next(iter(s["hybrid"])))),
    "weights of another shape": dict(state=lambda s: s["unet2d"].update(
        {k: torch.zeros(3) for k in list(s["unet2d"])[:1]})),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_models_are_refused_with_one_line(case, model, scene, tmp_path, capsys):
    bad = _tampered(model, tmp_path, **MALFORMED[case])
    out = tmp_path / "out"
    refused(["apply", scene[0], "--model", bad, "--out", out, "-q"], capsys, "not a valid DiffUnmix checkpoint")
    assert not out.exists()


def test_the_valid_model_still_loads(model):
    ck = load_checkpoint(model)
    assert ck["E"].shape[0] == 3 and np.all(np.isfinite(ck["E"]))


def test_resume_from_a_malformed_model_is_refused(model, scene, tmp_path, capsys):
    bad = _tampered(model, tmp_path, meta=lambda m: _set(m, "scale", float("nan")))
    out = tmp_path / "m.pt"
    refused(["train", scene[0], "--resume", bad, "--stage", "abundance-diffusion", "--out", out, "-q"], capsys,
            "not a valid DiffUnmix checkpoint")
    assert not os.path.exists(out)
