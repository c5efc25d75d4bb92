"""Fuzzing (hypothesis) of the model-file loader (issue 16): a real checkpoint with its metadata,
config, endmembers or weights replaced by arbitrary values, or its bytes truncated or flipped.
Whatever the file, :func:`load_checkpoint` and the engine built from it either work or raise a
one-line :class:`UnmixError` — never another exception, never a huge allocation. The raster and
library readers are fuzzed in ``tests/core/test_fuzz_parsers.py``.

``DIFFUNMIX_FUZZ_EXAMPLES`` sets the examples per test (one tenth of it here, so 20 by default;
``make fuzz`` runs more)."""

import io
import json
import os
import resource

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.deep.checkpoint import load_checkpoint
from core.deep.run import engine_from_checkpoint
from core.errors import UnmixError

FUZZ = settings(max_examples=max(1, int(os.environ.get("DIFFUNMIX_FUZZ_EXAMPLES", "200")) // 10), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
              st.text(max_size=12), st.sampled_from([0, 1, 2, 3, 20, 512, 4096, 10**11, -1, 0.5, "20", "1-20"])),
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)

META_KEYS = ["bands", "band_indices", "wavelengths_nm", "names", "scale", "config", "noise_sigma", "stages",
             "endmember_draws", "schema", "schema_version"]
CONFIG_PATHS = [(k,) for k in ("num_steps", "schedule", "tile", "overlap", "hybrid", "unet2d", "unet1d", "fit",
                               "refine")] + \
    [("unet2d", k) for k in ("base", "mults", "n_res", "time_dim", "groups", "dropout", "padding")] + \
    [("hybrid", k) for k in ("spectral_reduce", "c3d", "k_spectral", "n3d", "c2d", "n2d", "k2d", "temperature",
                             "input_norm", "conv3d_impl", "norm")] + \
    [("refine", k) for k in ("steps_2d", "start_2d", "dc_weight", "steps_1d", "alternations")] + \
    [("fit", k) for k in ("patch", "pool", "batch", "hybrid_iters", "lr")]


@pytest.fixture(scope="module")
def original(model):
    """The real checkpoint's bytes and its decoded dict."""
    data = open(model, "rb").read()
    return data, torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


@st.composite
def mutations(draw):
    kind = draw(st.sampled_from(["meta", "config", "E", "state", "bytes"]))
    if kind == "meta":
        return kind, draw(st.sampled_from(META_KEYS)), draw(_json)
    if kind == "config":
        return kind, draw(st.sampled_from(CONFIG_PATHS)), draw(_json)
    if kind == "E":
        shape = draw(st.tuples(st.integers(0, 5), st.integers(0, 25)))
        fill = draw(st.sampled_from([0.0, 0.5, float("nan"), float("inf"), 1e38]))
        return kind, shape, fill
    if kind == "state":
        return kind, draw(st.sampled_from(["hybrid", "unet2d", "unet1d"])), draw(st.integers(0, 40)), \
            draw(st.sampled_from(["drop", "shape", "nan", "huge-name"]))
    return kind, draw(st.floats(0, 1)), draw(st.integers(0, 255))


def _apply(original, mutation):
    data, obj = original
    kind = mutation[0]
    if kind == "bytes":  # truncate at, or flip a byte at, a fraction of the file
        _, where, value = mutation
        i = int(where * (len(data) - 1))
        return data[:i] if value < 128 else data[:i] + bytes([value]) + data[i + 1:]
    obj = {**obj, "state": {k: dict(v) for k, v in obj["state"].items()}}
    meta = json.loads(obj["meta_json"])
    if kind == "meta":
        meta[mutation[1]] = mutation[2]
    elif kind == "config":
        path, value = mutation[1], mutation[2]
        target = meta["config"]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    elif kind == "E":
        obj["E"] = torch.full(mutation[1], mutation[2])
    else:
        _, net, index, how = mutation
        names = sorted(obj["state"][net])
        name = names[index % len(names)]
        if how == "drop":
            del obj["state"][net][name]
        elif how == "shape":
            obj["state"][net][name] = torch.zeros(3, 1)
        elif how == "nan":
            obj["state"][net][name] = torch.full_like(obj["state"][net][name].float(), float("nan"))
        else:
            obj["state"][net]["x" * 1000] = torch.zeros(1)
    obj["meta_json"] = json.dumps(meta)
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@FUZZ
@given(mutation=mutations())
@example(mutation=("config", ("unet2d", "base"), 2048))
@example(mutation=("config", ("num_steps",), 10**11))
@example(mutation=("config", ("tile",), 0))
@example(mutation=("meta", "scale", 0))
@example(mutation=("E", (3, 20), float("nan")))
@example(mutation=("meta", "bands", -9223372036854775809))  # beyond 64 bits: np.isfinite refused it (TypeError)
def test_fuzz_checkpoint_loader(original, tmp_path_factory, mutation):
    path = tmp_path_factory.mktemp("ck") / "m.pt"
    path.write_bytes(_apply(original, mutation))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        ck = load_checkpoint(str(path))
        meta = ck["meta"]
        eng = engine_from_checkpoint(str(path), int(meta["bands"]), meta.get("wavelengths_nm"), "cpu",
                                     bands=meta.get("band_indices"))
    except UnmixError as exc:
        msg = str(exc)
        assert msg.strip() and "\n" not in msg, repr(msg)
        return
    finally:
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 500_000  # kB
    assert np.all(np.isfinite(eng.E)) and eng.scale > 0 and len(eng.names) == eng.P
