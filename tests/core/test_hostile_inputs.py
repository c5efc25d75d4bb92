"""Broken and hostile inputs end to end, through the CLI and the full engine: malformed spectral
libraries; degenerate rasters (1×1, 1×5000 and 5000×1, ±Inf pixels, a constant image, unsorted
wavelengths in µm, one band, all nodata); a full disk while the outputs are written.

Every case gives a valid result or exit status 2 with one ``error:`` line, and never leaves a
partial file behind nor changes an existing output.

The full engine is fitted here with its iteration counts cut (``tiny_engine``): the code path is
the one of ``--quality fast`` (the same networks, fitting loops, calibration and tiling), only
shorter. Inference of the full engine also runs from a saved model (``model``): an unfitted engine
saved as a real checkpoint, with the HybridSTU correction and the DDIM refinement switched on.
"""

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from osgeo import gdal

from core.cli import main
from core.library import bundled_library_path, read_library, resample
from core.raster import read_cube

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WL = np.linspace(450.0, 2400.0, 20)  # a 20-band sensor
NAMES = ("Lawn_Grass GDS91 green", "Concrete GDS375 Lt Gry Road", "Hematite GDS27")
NODATA_OUT = -9999.0
OUTPUTS = ["abundances.tif", "endmembers.csv", "endmembers.png", "report.json"]

torch.set_num_threads(2)


# ------------------------------------------------------------------ helpers and fixtures
@pytest.fixture(scope="module")
def spectra():
    """Three bundled-library spectra at the 20 bands: (names, E (3, 20))."""
    lib = resample(read_library(bundled_library_path()), WL)
    idx = [lib.names.index(n) for n in NAMES]
    return list(NAMES), lib.spectra[idx]


def abundances(h, w, seed=0):
    """Dirichlet abundances (3, h, w) whose first three pixels (row-major) are pure."""
    rng = np.random.default_rng(seed)
    A = rng.dirichlet(np.ones(3), size=h * w).T
    if h * w >= 3:
        A[:, :3] = np.eye(3)
    return A.reshape(3, h, w)


def write_scene(path, E, h, w, seed=0, **kw):
    """A noise-free mixture raster (GeoTIFF, 20 bands with wavelengths); returns its abundances."""
    from testutil import make_mixture_raster

    A = abundances(h, w, seed)
    make_mixture_raster(path, E, A, wavelengths=WL, **kw)
    return A


def cli(args, capsys):
    """``python -m core`` in process: (exit status, stderr lines)."""
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err.strip().splitlines()


def refused(args, capsys, match):
    """Exit status 2 and exactly one stderr line, an ``error:`` containing ``match``."""
    rc, err = cli(args, capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:"), (rc, err)
    assert match in err[0], err
    return err[0]


def module(*args, timeout=120, **kw):
    """``python -m core ARGS`` as a separate process."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "core", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env, **kw)


def snapshot(folder):
    """Every file in ``folder`` (hidden ones too) with its bytes."""
    return {n: (folder / n).read_bytes() for n in sorted(os.listdir(folder))}


def check_abundances(path, h, w, invalid=None):
    """Abundances on the simplex where valid, nodata elsewhere; returns (P, h, w)."""
    A = gdal.Open(str(path)).ReadAsArray().reshape(-1, h, w)
    invalid = np.zeros((h, w), bool) if invalid is None else invalid
    assert np.all(A[:, invalid] == NODATA_OUT)
    ok = A[:, ~invalid]
    assert np.all(np.isfinite(ok)) and ok.min() >= -1e-6
    np.testing.assert_allclose(ok.sum(0), 1.0, atol=1e-4)
    return A


@pytest.fixture
def tiny_engine(monkeypatch):
    """The full engine's ``fast`` preset with its iteration counts cut to a few."""
    from core.engine import EngineConfig
    from core.training import FitConfig

    preset = EngineConfig.preset.__func__

    def tiny(cls, quality="default"):
        cfg = preset(cls, "fast")
        cfg.fit = {**FitConfig.from_dict(cfg.fit).to_dict(), "hybrid_iters": 3, "unet2d_iters": 3, "unet1d_iters": 0,
                   "pool": 8, "batch": 2, "patch": 16}
        return cfg

    monkeypatch.setattr(EngineConfig, "preset", classmethod(tiny))


def save_model(path, E, names):
    """An unfitted engine saved as a real checkpoint: FCLS prior + HybridSTU correction + 2 DDIM steps."""
    from core.checkpoint import save_checkpoint
    from core.engine import Engine, EngineConfig
    from core.engine_run import checkpoint_payload
    from core.models import ResUNet2DConfig

    torch.manual_seed(0)
    cfg = EngineConfig.preset("fast")
    cfg.unet2d = ResUNet2DConfig(base=8, mults=(1, 2), time_dim=16, groups=4).to_dict()
    eng = Engine(E.shape[1], E * 1.02, names, cfg, float(E.mean()), "cpu")
    for p in eng.unet2d.parameters():  # a non-trivial refinement (the residual head starts at zero)
        torch.nn.init.normal_(p, 0.0, 0.02)
    assert eng.refine_cfg.steps_2d > 0 and float(eng.hybrid.correction) == 1.0
    eng.trained = ["hybridstu", "abundance-diffusion"]  # stands for a fitted model (the 'fast' stages)
    save_checkpoint(str(path), checkpoint_payload(eng, list(range(E.shape[1])), WL, {}))
    return str(path)


@pytest.fixture(scope="module")
def model(spectra, tmp_path_factory):
    names, E = spectra
    return save_model(tmp_path_factory.mktemp("model") / "model.pt", E, names)


@pytest.fixture(scope="module")
def scene(spectra, tmp_path_factory):
    """A 24×24 noise-free scene: (path, A)."""
    folder = tmp_path_factory.mktemp("scene")
    A = write_scene(folder / "scene.tif", spectra[1], 24, 24, seed=1)
    return folder / "scene.tif", A


# ------------------------------------------------------------------ malformed spectral libraries
@pytest.mark.parametrize("text, match", [
    ("name,a,b\n500,0.1,0.2\n600,0.1,0.2\n", "no wavelength column"),
    ("wavelength,a,b\n500,0.1,0.2\n600,0.1\n", "line 3: 2 values, the header has 3"),
    ("wavelength,a\n500,0.1\n600,abc\n", "line 3: non-numeric value 'abc'"),
    ("wavelength,a\n500,0.1\nabc,0.2\n", "line 3: non-numeric value 'abc'"),
    ("wavelength_nm,a,b\n5000,0.1,0.2\n6000,0.3,0.4\n", "does not overlap the target wavelengths"),
    ("wavelength_nm,a,b\n400,0.1,0.2\n700,0.3,0.4\n", "covers only 15% of the target bands"),
    ("band,a,b\n1,0.1,0.2\n2,0.3,0.4\n", "has 2 bands but the raster has 20, and the library has no wavelengths"),
])
def test_malformed_library_is_refused_with_one_line(scene, tmp_path, capsys, text, match):
    lib = tmp_path / "lib.csv"
    lib.write_text(text)
    out = tmp_path / "out"
    refused(["unmix", scene[0], "-p", "3", "--library", lib, "--out", out, "--method", "vca-fcls", "-q"], capsys,
            match)
    assert not os.path.exists(out)  # a failed run removes the folder it created


def test_library_in_micrometres_names_the_endmembers_like_nanometres(scene, spectra, tmp_path, capsys):
    lib = read_library(bundled_library_path())
    um = tmp_path / "lib_um.csv"  # the same library, in µm, bands in reverse order
    rows = ["wavelength_um," + ",".join(n.replace(",", " ") for n in lib.names)]
    rows += [",".join([f"{w / 1000:.7g}", *[f"{v:.8g}" for v in lib.spectra[:, j]]])
             for j, w in reversed(list(enumerate(lib.wavelengths_nm)))]
    um.write_text("\n".join(rows) + "\n")
    names = {}
    for tag, path in (("nm", bundled_library_path()), ("um", um)):
        rc, err = cli(["unmix", scene[0], "-p", "3", "--library", path, "--out", tmp_path / tag,
                       "--method", "vca-fcls", "-q"], capsys)
        assert rc == 0, err
        names[tag] = json.load(open(tmp_path / tag / "report.json"))["endmember_names"]
    assert sorted(names["nm"]) == sorted(spectra[0]) and names["um"] == names["nm"]


# ------------------------------------------------------------------ degenerate rasters
def test_one_pixel_raster(spectra, tmp_path, capsys):
    names, E = spectra
    path = tmp_path / "one.tif"
    A = write_scene(path, E, 1, 1, seed=2)
    out = tmp_path / "out"
    for p, match in (("3", "only 1 valid pixel(s), fewer than the 3 endmembers"),
                     ("0", "HySime needs more valid pixels (1) than bands (20) to estimate the number of endmembers")):
        proc = module("unmix", path, "-p", p, "--out", out, "--method", "vca-fcls", "-q")
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith("error: ") and match in proc.stderr, proc.stderr
    assert not os.path.exists(out)  # a failed run removes the folder it created
    # with given endmembers the one pixel is unmixed exactly
    e_csv = tmp_path / "E.csv"
    np.savetxt(e_csv, np.column_stack([WL, E.T]), delimiter=",", header="wavelength_nm," + ",".join(names),
               comments="")
    rc, err = cli(["fcls", path, "--endmembers-csv", e_csv, "--out", tmp_path / "A.tif"], capsys)
    assert rc == 0, err
    np.testing.assert_allclose(check_abundances(tmp_path / "A.tif", 1, 1), A, atol=1e-4)


def test_one_pixel_raster_full_engine(spectra, model, tmp_path, capsys, tiny_engine):
    path = tmp_path / "one.tif"
    write_scene(path, spectra[1], 1, 1, seed=2)
    refused(["unmix", path, "-p", "3", "--out", tmp_path / "fit", "--quality", "fast", "-q"], capsys,
            "only 1 valid pixel(s), fewer than the 3 endmembers")
    assert not os.path.exists(tmp_path / "fit")  # a failed run removes the folder it created
    rc, err = cli(["unmix", path, "--model", model, "--out", tmp_path / "applied", "-q"], capsys)
    assert rc == 0, err
    check_abundances(tmp_path / "applied" / "abundances.tif", 1, 1)


def _armse(A_true, A_est):
    from core.metrics import armse

    best = min(armse(A_true.reshape(3, -1).T, A_est[list(p)].reshape(3, -1).T)
               for p in ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)))
    return best


def test_single_row_and_single_column_rasters_vca_fcls(spectra, tmp_path, capsys):
    E = spectra[1]
    row, col = tmp_path / "row.tif", tmp_path / "col.tif"
    A_row = write_scene(row, E, 1, 5000, seed=3)
    A_col = write_scene(col, E, 5000, 1, seed=4)
    proc = module("unmix", row, "-p", "3", "--out", tmp_path / "r", "--method", "vca-fcls", "-q")
    assert proc.returncode == 0, proc.stderr
    rc, err = cli(["unmix", col, "-p", "3", "--out", tmp_path / "c", "--method", "vca-fcls", "-q"], capsys)
    assert rc == 0, err
    for out, A, (h, w) in ((tmp_path / "r", A_row, (1, 5000)), (tmp_path / "c", A_col, (5000, 1))):
        assert sorted(os.listdir(out)) == OUTPUTS
        est = check_abundances(out / "abundances.tif", h, w)
        assert _armse(A, est) < 1e-3  # noise-free with pure pixels: exact


def test_single_row_and_single_column_rasters_full_engine(spectra, model, tmp_path, capsys, tiny_engine):
    E = spectra[1]
    row, col = tmp_path / "row.tif", tmp_path / "col.tif"
    write_scene(row, E, 1, 5000, seed=3)
    write_scene(col, E, 5000, 1, seed=4)
    runs = [(row, (1, 5000), ["-p", "3", "--quality", "fast"]), (col, (5000, 1), ["--model", model])]
    for i, (path, (h, w), extra) in enumerate(runs):
        out = tmp_path / f"o{i}"
        rc, err = cli(["unmix", path, "--out", out, "-q", *extra], capsys)
        assert rc == 0, err
        assert sorted(os.listdir(out)) == OUTPUTS
        check_abundances(out / "abundances.tif", h, w)


def test_infinite_values_are_treated_as_nodata(spectra, model, tmp_path, capsys):
    names, E = spectra
    path = tmp_path / "inf.tif"
    write_scene(path, E, 12, 12, seed=5)
    ds = gdal.Open(str(path), gdal.GA_Update)
    band = ds.GetRasterBand(4).ReadAsArray()
    band[0, 5] = np.inf
    ds.GetRasterBand(4).WriteArray(band)
    for b in range(20):  # -inf in every band of one pixel
        arr = ds.GetRasterBand(b + 1).ReadAsArray()
        arr[7, 2] = -np.inf
        ds.GetRasterBand(b + 1).WriteArray(arr)
    ds = None
    invalid = np.zeros((12, 12), bool)
    invalid[0, 5] = invalid[7, 2] = True
    e_csv = tmp_path / "E.csv"
    np.savetxt(e_csv, np.column_stack([WL, E.T]), delimiter=",", header="wavelength_nm,a,b,c", comments="")
    runs = {"vca-fcls": ["unmix", path, "-p", "3", "--out", tmp_path / "v", "--method", "vca-fcls", "-q"],
            "model": ["unmix", path, "--model", model, "--out", tmp_path / "m", "-q"],
            "fcls": ["fcls", path, "--endmembers-csv", e_csv, "--out", tmp_path / "f.tif"]}
    for name, args in runs.items():
        rc, err = cli(args, capsys)
        assert rc == 0, (name, err)
    for out in (tmp_path / "v" / "abundances.tif", tmp_path / "m" / "abundances.tif", tmp_path / "f.tif"):
        check_abundances(out, 12, 12, invalid)
    report = json.load(open(tmp_path / "v" / "report.json"))
    assert report["valid_pixels"] == 12 * 12 - 2


@pytest.mark.timeout(180)
@pytest.mark.parametrize("value, full_engine", [(0.0, False), (0.25, True)])
def test_constant_image_gives_a_result_or_a_clear_error(tmp_path, capsys, tiny_engine, value, full_engine):
    path = tmp_path / "const.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 16, 16, 20, gdal.GDT_Float32)
    for b in range(20):
        ds.GetRasterBand(b + 1).Fill(value)
    ds = None
    runs = [["-p", "3", "--method", "vca-fcls"], ["-p", "0", "--method", "vca-fcls"]]
    if full_engine:
        runs.append(["-p", "3", "--quality", "fast"])
    for i, extra in enumerate(runs):
        out = tmp_path / f"o{i}"
        rc, err = cli(["unmix", path, "--out", out, "-q", *extra], capsys)
        if rc == 0:
            check_abundances(out / "abundances.tif", 16, 16)
            E = np.loadtxt(out / "endmembers.csv", delimiter=",", skiprows=1)
            assert np.all(np.isfinite(E))
        else:
            assert rc == 2 and len(err) == 1 and err[0].startswith("error:"), err
            assert not os.path.exists(out)  # a failed run removes the folder it created


def _write_envi(path, cube, header_extra):
    """A float32 BSQ ENVI raster written by hand (``cube`` (B, H, W))."""
    b, h, w = cube.shape
    cube.astype("<f4").tofile(path)
    path.with_suffix(".hdr").write_text(f"ENVI\nsamples = {w}\nlines = {h}\nbands = {b}\nheader offset = 0\n"
                                        f"file type = ENVI Standard\ndata type = 4\ninterleave = bsq\n"
                                        f"byte order = 0\n{header_extra}")
    return path


def test_unsorted_wavelengths_in_micrometres_match_sorted_nanometres(spectra, tmp_path, capsys):
    names, E = spectra
    sorted_nm = tmp_path / "sorted.tif"
    write_scene(sorted_nm, E, 16, 16, seed=6)
    cube = read_cube(str(sorted_nm))[0]
    perm = np.random.default_rng(0).permutation(20)
    shuffled = _write_envi(tmp_path / "shuffled.img", cube[perm],
                           "wavelength units = Micrometers\nwavelength = {"
                           + ", ".join(f"{w / 1000:.9f}" for w in WL[perm]) + "}\n")
    results = {}
    for tag, path in (("nm", sorted_nm), ("um", shuffled.with_suffix(".hdr"))):
        rc, err = cli(["unmix", path, "-p", "3", "--library", bundled_library_path(), "--out", tmp_path / tag,
                       "--method", "vca-fcls", "-q"], capsys)
        assert rc == 0, err
        report = json.load(open(tmp_path / tag / "report.json"))
        A = check_abundances(tmp_path / tag / "abundances.tif", 16, 16)
        csv_rows = np.loadtxt(tmp_path / tag / "endmembers.csv", delimiter=",", skiprows=1)
        results[tag] = (report["endmember_names"], A, csv_rows)
    names_nm, A_nm, csv_nm = results["nm"]
    names_um, A_um, csv_um = results["um"]
    assert sorted(names_nm) == sorted(names) and sorted(names_um) == sorted(names)
    order = [names_um.index(n) for n in names_nm]
    np.testing.assert_allclose(A_um[order], A_nm, atol=1e-4)
    np.testing.assert_allclose(csv_um[:, 0], WL[perm], atol=1e-3)  # in nm, in the raster's band order
    np.testing.assert_allclose(csv_um[:, 1:][:, order], csv_nm[perm, 1:], atol=1e-4)


def test_truncated_raster_is_refused_with_one_line(spectra, tmp_path, capsys):
    path = tmp_path / "scene.tif"
    write_scene(path, spectra[1], 64, 64, seed=9)
    data = path.read_bytes()
    cut = tmp_path / "cut.tif"  # a broken download: the header is there, half the strips are not
    cut.write_bytes(data[: len(data) // 2])
    e_csv = tmp_path / "E.csv"
    np.savetxt(e_csv, np.column_stack([WL, spectra[1].T]), delimiter=",", header="wavelength_nm,a,b,c", comments="")
    out = tmp_path / "o"
    for args in (["unmix", cut, "-p", "3", "--out", out, "--method", "vca-fcls", "-q"],
                 ["fcls", cut, "--endmembers-csv", e_csv, "--out", out / "A.tif"], ["count", cut]):
        line = refused(args, capsys, f"cannot read {cut}: the file is truncated or corrupted")
        assert line.count(str(cut)) == 1
    assert not os.path.exists(out)  # a failed run removes the folder it created


def test_one_band_raster_is_refused_by_every_command(spectra, tmp_path, capsys, tiny_engine):
    from testutil import make_mixture_raster

    path = tmp_path / "one_band.tif"
    make_mixture_raster(path, spectra[1][:, :1], abundances(8, 8))
    e_csv = tmp_path / "E.csv"
    np.savetxt(e_csv, np.column_stack([WL, spectra[1].T]), delimiter=",", header="wavelength_nm,a,b,c", comments="")
    for args in (["unmix", path, "-p", "2", "--out", tmp_path / "o", "--quality", "fast", "-q"],
                 ["fcls", path, "--endmembers-csv", e_csv, "--out", tmp_path / "o" / "A.tif"],
                 ["count", path], ["extract", path, "-p", "2", "--out", tmp_path / "o" / "E.csv"],
                 ["train", path, "-p", "2", "--out", tmp_path / "o" / "m.pt", "--quality", "fast", "-q"]):
        refused(args, capsys, "input raster has 1 band")
    assert not (tmp_path / "o").exists() or os.listdir(tmp_path / "o") == []


def test_all_nodata_raster_is_refused_by_every_command(spectra, model, tmp_path, capsys, tiny_engine):
    from testutil import make_mixture_raster

    path = tmp_path / "nodata.tif"
    make_mixture_raster(path, np.full((3, 20), -5.0), np.full((3, 10, 10), 1 / 3), nodata=-5.0,
                        wavelengths=WL)
    e_csv = tmp_path / "E.csv"
    np.savetxt(e_csv, np.column_stack([WL, spectra[1].T]), delimiter=",", header="wavelength_nm,a,b,c", comments="")
    out = tmp_path / "o"
    for args in (["unmix", path, "-p", "3", "--out", out, "--quality", "fast", "-q"],
                 ["unmix", path, "--model", model, "--out", out, "-q"],  # a model used to write an empty result
                 ["fcls", path, "--endmembers-csv", e_csv, "--out", out / "A.tif"],
                 ["count", path]):
        refused(args, capsys, "input raster has no valid pixels (all nodata or NaN)")
    assert not os.path.exists(out)  # a failed run removes the folder it created


# ------------------------------------------------------------------ a full disk
ENOSPC = os.strerror(errno.ENOSPC)  # "No space left on device"


@pytest.fixture(scope="module")
def disk_scene(spectra, tmp_path_factory):
    """A 48×48 scene."""
    folder = tmp_path_factory.mktemp("disk")
    write_scene(folder / "scene.tif", spectra[1], 48, 48, seed=7)
    return folder / "scene.tif"


def _previous_run(scene_path, folder, capsys, extra=("--method", "vca-fcls")):
    """Outputs of a finished run in ``folder``; returns their snapshot."""
    rc, err = cli(["unmix", scene_path, "-p", "3", "--out", folder, "-q", *extra], capsys)
    assert rc == 0, err
    assert sorted(os.listdir(folder)) == OUTPUTS
    return snapshot(folder)


def _gdal_full(name):
    """Emulate GDAL's report of a full disk: a CE_Failure error instead of the call."""

    def failing(self, *args, **kwargs):
        gdal.Error(gdal.CE_Failure, gdal.CPLE_FileIO, f"_tiffWriteProc:{ENOSPC}")
        return gdal.CE_Failure

    return failing


class _FullCsvWriter:
    def __init__(self, *args, **kwargs):
        self.rows = 0

    def writerow(self, row):
        self.rows += 1
        if self.rows > 2:
            raise OSError(errno.ENOSPC, ENOSPC)


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, ENOSPC)


@pytest.mark.parametrize("where", ["abundance block write", "abundance flush at close", "endmember csv",
                                   "report", "abundance write of the full engine"])
def test_full_disk_fails_cleanly_and_keeps_existing_outputs(disk_scene, model, tmp_path, capsys, monkeypatch,
                                                            where):
    import core.library
    import core.pipeline

    out = tmp_path / "out"
    extra = ["--model", model] if "full engine" in where else ["--method", "vca-fcls"]
    before = _previous_run(disk_scene, out, capsys, extra)
    if "block write" in where or "full engine" in where:
        monkeypatch.setattr(gdal.Dataset, "WriteRaster", _gdal_full("WriteRaster"))
    elif "flush" in where:
        monkeypatch.setattr(gdal.Dataset, "FlushCache", _gdal_full("FlushCache"))
    elif "csv" in where:
        monkeypatch.setattr(core.library.csv, "writer", _FullCsvWriter)
    else:
        monkeypatch.setattr(core.pipeline.json, "dump", _no_space)
    line = refused(["unmix", disk_scene, "-p", "3", "--out", out, "-q", "--seed", "1", *extra], capsys, ENOSPC)
    assert "cannot write" in line and str(out) in line
    assert snapshot(out) == before  # nothing partial left, nothing existing changed


@pytest.mark.skipif(sys.platform != "linux", reason="needs RLIMIT_FSIZE and SIGXFSZ")
def test_real_write_refusal_by_the_system_in_a_separate_process(spectra, tmp_path, capsys):
    """The OS refuses the writes (a file size limit: EFBIG, as a full disk gives ENOSPC) under real GDAL."""
    import resource
    import signal

    big_scene = tmp_path / "scene.tif"
    write_scene(big_scene, spectra[1], 256, 256, seed=8)  # abundances ≈ 700 kB, over the 64 kB limit
    out = tmp_path / "out"
    before = _previous_run(big_scene, out, capsys)

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write() instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))

    proc = module("unmix", big_scene, "-p", "3", "--out", out, "--method", "vca-fcls", "-q", "--seed", "1",
                  preexec_fn=limit)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: cannot write "), proc.stderr
    assert os.strerror(errno.EFBIG) in proc.stderr
    assert snapshot(out) == before


# ------------------------------------------------------------------ outputs never replace inputs
def _digest(path):
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_no_output_may_replace_an_input_file(scene, spectra, model, tmp_path, capsys):
    """Library, endmember CSV, model, reference raster and a symlinked input are inputs too."""
    names, E = spectra
    lib = tmp_path / "lib.csv"
    np.savetxt(lib, np.column_stack([WL, E.T]), delimiter=",", header="wavelength_nm,a,b,c", comments="")
    res = tmp_path / "res"
    assert main(["unmix", str(scene[0]), "-p", "3", "--method", "vca-fcls", "--out", str(res), "-q"]) == 0
    capsys.readouterr()
    link = tmp_path / "link.tif"
    os.symlink(scene[0], link)
    guarded = [lib, res / "endmembers.csv", res / "abundances.tif", model, scene[0]]
    before = {p: _digest(p) for p in guarded}
    msg = "an output would overwrite an input file"
    refused(["extract", scene[0], "-p", "3", "--library", lib, "--out", lib], capsys, msg)
    refused(["unmix", scene[0], "-p", "3", "--method", "vca-fcls", "--library", res / "endmembers.csv",
             "--out", res, "-q"], capsys, msg)
    refused(["fcls", scene[0], "--endmembers-csv", lib, "--out", lib], capsys, msg)
    refused(["apply", scene[0], "--model", res / "abundances.tif", "--out", res, "-q"], capsys, msg)
    refused(["evaluate", "--abundances", res / "abundances.tif", "--reference-abundances", res / "abundances.tif",
             "--json", res / "abundances.tif"], capsys, msg)
    refused(["train", scene[0], "-p", "3", "--reference-abundances", res / "abundances.tif",
             "--out", res / "abundances.tif", "-q"], capsys, msg)
    refused(["fcls", link, "--endmembers-csv", lib, "--out", scene[0]], capsys, msg)
    assert {p: _digest(p) for p in guarded} == before


def test_conflicting_and_out_of_range_options_are_refused(scene, model, tmp_path, capsys):
    out = tmp_path / "o"
    refused(["count", scene[0], "--seed", "-5"], capsys, "expected a whole number ≥ 0, got -5")
    refused(["count", scene[0], "--seed", "abc"], capsys, "expected a whole number ≥ 0, got 'abc'")
    refused(["synth", "--out", out, "--min-angle", "-5"], capsys, "minimum angle between endmembers")
    refused(["unmix", scene[0], "--model", model, "-p", "5", "--out", out, "-q"], capsys,
            "the saved model has 3 endmembers, not the 5 requested")
    refused(["unmix", scene[0], "--model", model, "--method", "vca-fcls", "--out", out, "-q"], capsys,
            "a saved model runs the full engine")
    refused(["unmix", scene[0], "-p", "3", "--method", "vca-fcls", "--uncertainty", "3", "--out", out, "-q"],
            capsys, "the abundance uncertainty needs the full engine")
    refused(["apply", scene[0], "--model", model, "--uncertainty", "1", "--out", out, "-q"], capsys,
            "at least 2 (a spread needs two)")
    assert not out.exists()


def test_uncertainty_is_drawn_even_when_the_gate_turned_the_refinement_off(scene, spectra, tmp_path, capsys):
    """A fit whose self-validation switched the DDIM refinement off still samples the trained ResUNet2D."""
    from core.checkpoint import load_checkpoint, save_checkpoint

    names, E = spectra
    path = save_model(tmp_path / "on.pt", E, names)
    ck = load_checkpoint(path)
    ck["meta"]["config"]["refine"]["steps_2d"] = 0  # as the gate leaves it
    off = tmp_path / "off.pt"
    save_checkpoint(str(off), ck)
    out = tmp_path / "u"
    assert main(["apply", str(scene[0]), "--model", str(off), "--uncertainty", "3", "--out", str(out), "-q"]) == 0
    U, _, _ = read_cube(str(out / "uncertainty.tif"), bands=None)
    assert U.shape == (3, 24, 24) and U.max() > 1e-6  # was exactly 0: nothing stochastic ran
    report = json.loads((out / "report.json").read_text())
    assert report["uncertainty"] == {"draws": 3, "ddim_steps": 2, "eta": 1.0}


def test_evaluate_checks_its_input_and_scores_extra_estimates(scene, spectra, tmp_path, capsys):
    res = tmp_path / "r"
    assert main(["unmix", str(scene[0]), "-p", "4", "--method", "vca-fcls", "--out", str(res), "-q"]) == 0
    ref = tmp_path / "ref.tif"
    write_scene(ref, spectra[1], 24, 24, seed=1)  # the scene's own grid: usable as a 20-band "input"
    from testutil import make_mixture_raster

    truth = tmp_path / "truth.tif"
    make_mixture_raster(truth, np.eye(3), scene[1])  # 3-band raster holding the true abundances
    capsys.readouterr()
    small = tmp_path / "small.tif"
    write_scene(small, spectra[1], 8, 8)
    refused(["evaluate", "--abundances", res / "abundances.tif", "--reference-abundances", truth,
             "--endmembers", res / "endmembers.csv", "--reference-endmembers", res / "endmembers.csv",
             "--input", small], capsys, "input raster is 8x8 pixels, the abundance raster 24x24")
    report = tmp_path / "new" / "deeper" / "scores.json"
    rc = main(["evaluate", "--abundances", str(res / "abundances.tif"), "--reference-abundances", str(truth),
               "--endmembers", str(res / "endmembers.csv"), "--input", str(scene[0]), "--json", str(report)])
    assert rc == 0  # 4 estimates matched to 3 references; the report's folder is created
    scores = json.loads(report.read_text())
    assert scores["armse"] < 0.05 and scores["reconstruction_psnr"] > 40


def test_csv_outputs_get_the_usual_file_mode(tmp_path):
    from core.library import write_csv

    old = os.umask(0o022)
    try:
        write_csv(tmp_path / "e.csv", np.ones((2, 3)), ["a", "b"])
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / "e.csv").st_mode & 0o777) == 0o644


def test_two_outputs_on_one_file_and_a_synthetic_scene_onto_its_library_are_refused(scene, spectra, tmp_path,
                                                                                     capsys):
    from core.errors import UnmixError
    from core.pipeline import UnmixOptions, unmix

    with pytest.raises(UnmixError, match="two outputs name the same file"):
        unmix(str(scene[0]), str(tmp_path / "a.tif"), str(tmp_path / "e.csv"), UnmixOptions(endmembers=3),
              residual_path=str(tmp_path / "a.tif"))
    lib = tmp_path / "d" / "truth_endmembers.csv"
    lib.parent.mkdir()
    names, E = spectra
    np.savetxt(lib, np.column_stack([WL, E.T]), delimiter=",", header="wavelength_nm,a,b,c", comments="")
    before = _digest(lib)
    refused(["synth", "--out", lib.parent, "-p", "2", "--library", lib], capsys,
            "an output would overwrite an input file")
    assert _digest(lib) == before and os.listdir(tmp_path) == ["d"] and os.listdir(lib.parent) == [lib.name]


class _CancelAtTheEnd:
    """Progress that asks to cancel once the run reports 95 % (while the outputs are finished)."""

    def __init__(self):
        self.last = 0.0

    def set_progress(self, percent):
        self.last = max(self.last, percent)

    def is_canceled(self):
        return self.last >= 95.0

    def info(self, message):
        pass


def test_a_cancel_just_before_the_outputs_are_committed_keeps_the_earlier_results(scene, spectra, tmp_path):
    """Cancel pressed while the CSV, plot and report are written: the earlier run's files stay."""
    from core.errors import Cancelled
    from core.pipeline import UnmixOptions, unmix
    from core.tasks import fcls_raster

    out = tmp_path / "r"
    paths = [str(out / n) for n in ("abundances.tif", "endmembers.csv")]
    unmix(str(scene[0]), *paths, UnmixOptions(endmembers=3), report_path=str(out / "report.json"))
    before = {p: _digest(p) for p in paths + [str(out / "report.json")]}
    with pytest.raises(Cancelled):
        unmix(str(scene[0]), *paths, UnmixOptions(endmembers=4), report_path=str(out / "report.json"),
              progress=_CancelAtTheEnd())
    with pytest.raises(Cancelled):
        fcls_raster(str(scene[0]), paths[1], paths[0], progress=_CancelAtTheEnd())
    assert {p: _digest(p) for p in before} == before
    assert sorted(os.listdir(out)) == ["abundances.tif", "endmembers.csv", "report.json"]  # no partial files


def test_count_gives_a_number_unmix_accepts(tmp_path, capsys):
    """HySime may say 1 (or 43); count reports what an automatic unmix would use, and why."""
    from core.tasks import count_endmembers

    path = tmp_path / "three.tif"
    rng = np.random.default_rng(0)
    E = np.array([[0.2, 0.4, 0.6], [0.6, 0.4, 0.2]])
    from testutil import make_mixture_raster

    make_mixture_raster(path, E, rng.dirichlet(np.ones(2), 400).T.reshape(2, 20, 20))
    res = count_endmembers(str(path))
    assert res["endmembers"] == 2 and 2 <= res["endmembers"] <= res["bands"] - 1
    if res["hysime"] != 2:
        assert f"HySime estimated {res['hysime']}, unmixing uses 2" in res["warning"]


def test_endmember_csv_at_other_wavelengths_is_resampled_even_with_the_same_band_count(tmp_path):
    """A CSV of 20 bands, but not the raster's 20: its values are matched by wavelength, not position."""
    from core.tasks import read_endmember_csv

    def spectra_at(wl):  # straight lines in wavelength: interpolation reproduces them exactly
        return np.stack([0.1 + 0.0005 * (wl - 400.0), 0.9 - 0.0003 * (wl - 400.0)])

    shifted = WL + 10.0
    csv_path = tmp_path / "shifted.csv"
    np.savetxt(csv_path, np.column_stack([shifted, spectra_at(shifted).T]), delimiter=",",
               header="wavelength_nm,a,b", comments="")
    got, names = read_endmember_csv(str(csv_path), 20, WL)
    assert names == ["a", "b"]
    np.testing.assert_allclose(got[:, 1:], spectra_at(WL)[:, 1:], atol=1e-9)  # on the raster's wavelengths
    assert np.abs(got[:, 1:] - spectra_at(shifted)[:, 1:]).max() > 0.004  # not taken position by position


def test_evaluate_scores_the_reconstruction_without_references(scene, tmp_path, capsys):
    res = tmp_path / "r"
    assert main(["unmix", str(scene[0]), "-p", "3", "--method", "vca-fcls", "--out", str(res), "-q"]) == 0
    report = tmp_path / "s.json"
    assert main(["evaluate", "--abundances", str(res / "abundances.tif"), "--endmembers",
                 str(res / "endmembers.csv"), "--input", str(scene[0]), "--json", str(report)]) == 0
    scores = json.loads(report.read_text())
    assert scores["reconstruction_psnr"] > 40  # a noise-free scene, its own endmembers
    capsys.readouterr()
    refused(["evaluate", "--abundances", res / "abundances.tif", "--input", scene[0]], capsys,
            "needs the estimated abundances and endmembers")
    refused(["evaluate", "--endmembers", res / "endmembers.csv"], capsys, "nothing to compare")


def test_no_valid_pixel_names_the_band_that_is_empty_everywhere(spectra, tmp_path, capsys):
    path = tmp_path / "gap.tif"
    write_scene(path, spectra[1], 12, 12, nodata=-9999.0)
    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.GetRasterBand(7).Fill(-9999.0)  # a band of nodata (e.g. a water-vapour band, not flagged in a bbl)
    ds = None
    line = refused(["unmix", path, "-p", "3", "--method", "vca-fcls", "--out", tmp_path / "o", "-q"], capsys,
                   "input raster has no valid pixels")
    assert "band(s) 7 hold no valid value anywhere" in line
    assert main(["unmix", str(path), "-p", "3", "--method", "vca-fcls", "--bands", "1-6,8-20",
                 "--out", str(tmp_path / "o"), "-q"]) == 0


def test_envi_header_finds_a_data_file_of_any_extension(spectra, tmp_path):
    from core.raster import read_info

    src = tmp_path / "s.tif"
    write_scene(src, spectra[1], 6, 5)
    gdal.Translate(str(tmp_path / "cube.rfl"), str(src), format="ENVI")
    assert os.path.exists(tmp_path / "cube.hdr")
    info = read_info(str(tmp_path / "cube.hdr"))
    assert info.path.endswith("cube.rfl") and (info.width, info.height, info.count) == (5, 6, 20)


def test_two_bands_are_refused_with_the_reason(spectra, tmp_path, capsys):
    path = tmp_path / "s.tif"
    write_scene(path, spectra[1], 6, 5)
    refused(["unmix", path, "--bands", "1,2", "--method", "vca-fcls", "--out", tmp_path / "o", "-q"], capsys,
            "only 2 usable band(s) selected; unmixing needs at least 3")


def test_train_one_stage_at_a_time_resuming_from_the_checkpoint(scene, tmp_path, capsys, tiny_engine):
    """train --stage hybridstu, then --stage abundance-diffusion --resume: the issue's staged workflow."""
    from core.checkpoint import load_checkpoint

    first, second = tmp_path / "h.pt", tmp_path / "h2.pt"
    assert main(["train", str(scene[0]), "-p", "3", "--stage", "hybridstu", "--out", str(first), "-q"]) == 0
    ck = load_checkpoint(str(first))
    assert ck["meta"]["stages"] == ["hybridstu"]
    assert ck["meta"]["config"]["refine"]["steps_2d"] == 0  # no untrained refinement is ever applied
    assert main(["apply", str(scene[0]), "--model", str(first), "--out", str(tmp_path / "a1"), "-q"]) == 0
    capsys.readouterr()
    refused(["train", scene[0], "--stage", "abundance-diffusion", "--out", second, "-q"], capsys,
            "needs a checkpoint to resume from")
    refused(["train", scene[0], "--stage", "endmember-diffusion", "--resume", first, "--out", second, "-q"],
            capsys, "the checkpoint's abundance-diffusion is not fitted yet")
    refused(["train", scene[0], "--stage", "abundance-diffusion", "--resume", first, "--out", first, "-q"],
            capsys, "an output would overwrite an input file")
    assert main(["train", str(scene[0]), "--stage", "abundance-diffusion", "--resume", str(first),
                 "--out", str(second), "-q"]) == 0
    ck2 = load_checkpoint(str(second))
    assert ck2["meta"]["stages"] == ["hybridstu", "abundance-diffusion"]
    np.testing.assert_allclose(ck2["E"], ck["E"])  # the checkpoint's endmembers are kept
    hybrid = [k for k in ck["state"]["hybrid"] if k != "correction"]
    for k in hybrid:  # HybridSTU was not refitted
        assert torch.equal(ck["state"]["hybrid"][k], ck2["state"]["hybrid"][k]), k
    moved = [k for k in ck["state"]["unet2d"] if not torch.equal(ck["state"]["unet2d"][k], ck2["state"]["unet2d"][k])]
    assert moved  # the abundance diffusion was
    assert main(["apply", str(scene[0]), "--model", str(second), "--out", str(tmp_path / "a2"), "-q"]) == 0
    capsys.readouterr()
    refused(["apply", scene[0], "--model", first, "--uncertainty", "3", "--out", tmp_path / "u", "-q"], capsys,
            "which this model has not fitted")
    refused(["train", scene[0], "--stage", "endmember-diffusion", "--resume", second, "--out", tmp_path / "c.pt",
             "-q"], capsys, "the endmember diffusion is fitted at quality 'best' only")


def test_supervised_training_keeps_the_reference_order(spectra, tmp_path, capsys, tiny_engine):
    """Band k of the reference abundances is endmember k of the model, whatever order VCA finds."""
    from core.checkpoint import load_checkpoint
    from core.metrics import sad_matrix
    from testutil import make_mixture_raster

    names, E = spectra
    scene_path = tmp_path / "s.tif"
    A = write_scene(scene_path, E, 24, 24, seed=3)
    for order in ([2, 0, 1], [1, 2, 0]):
        ref = tmp_path / f"ref{order[0]}.tif"
        make_mixture_raster(ref, np.eye(3), A[order])  # the truth, in another band order
        model = tmp_path / f"m{order[0]}.pt"
        assert main(["train", str(scene_path), "--reference-abundances", str(ref), "--out", str(model), "-q"]) == 0
        got = load_checkpoint(str(model))["E"]
        assert np.all(np.diag(sad_matrix(E[order], got)) < 0.02), np.diag(sad_matrix(E[order], got))


def test_apply_without_wavelengths_checks_the_band_numbers(spectra, model, tmp_path, capsys):
    names, E = spectra
    wide = np.concatenate([E, E[:, :5]], axis=1)  # 25 bands, no wavelengths
    path = tmp_path / "nowl.tif"
    from testutil import make_mixture_raster

    make_mixture_raster(path, wide, abundances(8, 8))
    assert main(["apply", str(path), "--model", model, "--bands", "1-20", "--out", str(tmp_path / "ok"), "-q"]) == 0
    capsys.readouterr()
    refused(["apply", path, "--model", model, "--bands", "6-25", "--out", tmp_path / "no", "-q"], capsys,
            "was trained on bands 1-20, this selection is bands 6-25")


def test_a_rerun_into_a_folder_removes_optional_outputs_it_did_not_write(scene, tmp_path):
    out = tmp_path / "r"
    assert main(["unmix", str(scene[0]), "-p", "3", "--method", "vca-fcls", "--residual", "--out", str(out),
                 "-q"]) == 0
    assert (out / "residual.tif").exists()
    assert main(["unmix", str(scene[0]), "-p", "3", "--method", "vca-fcls", "--out", str(out), "-q"]) == 0
    assert not (out / "residual.tif").exists()


def test_evaluate_matches_endmembers_of_other_bands_by_wavelength(spectra, tmp_path):
    """A result without the bad bands (18 of 20) scored against a 20-band reference."""
    from core.tasks import evaluate_files

    names, E = spectra
    ref, est = tmp_path / "ref.csv", tmp_path / "est.csv"
    np.savetxt(ref, np.column_stack([WL, E.T]), delimiter=",", header="wavelength_nm,a,b,c", comments="")
    keep = np.r_[0:8, 10:20]
    np.savetxt(est, np.column_stack([WL[keep], E[::-1, keep].T]), delimiter=",", header="wavelength_nm,x,y,z",
               comments="")
    scores = evaluate_files(endmembers=str(est), reference_endmembers=str(ref))
    assert scores["sad_mean_rad"] < 1e-6  # same spectra, found through the wavelengths (and in another order)
