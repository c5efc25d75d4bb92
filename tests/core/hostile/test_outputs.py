"""Hostile inputs: outputs that would replace inputs, conflicting options, evaluate's inputs, staged and
supervised training.

Helpers: hostile_util.py; fixtures: conftest.py beside this file."""

import json
import os

import numpy as np
import pytest
import torch
from hostile_util import WL, _digest, main, read_cube, refused, save_model, write_scene


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
    from core.deep.checkpoint import load_checkpoint, save_checkpoint

    names, E = spectra
    path = save_model(tmp_path / "on.pt", E, names)
    ck = load_checkpoint(path)
    ck["meta"]["config"]["refine"]["steps_2d"] = 0  # as the gate leaves it
    ck["meta"].pop("endmember_draws")  # the spread must come from the diffusion draws alone
    off = tmp_path / "off.pt"
    save_checkpoint(str(off), ck)
    out = tmp_path / "u"
    assert main(["apply", str(scene[0]), "--model", str(off), "--uncertainty", "3", "--out", str(out), "-q"]) == 0
    U, _, _ = read_cube(str(out / "uncertainty.tif"), bands=None)
    assert U.shape == (3, 24, 24) and U.max() > 1e-6  # was exactly 0: nothing stochastic ran
    report = json.loads((out / "report.json").read_text())
    assert report["uncertainty"] == {"draws": 3, "ddim_steps": 2, "eta": 1.0, "endmember_draws": 0}


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


def test_two_outputs_on_one_file_and_a_synthetic_scene_onto_its_library_are_refused(scene, spectra, tmp_path,
                                                                                     capsys):
    from core.errors import UnmixError
    from core.options import UnmixOptions
    from core.pipeline import unmix

    with pytest.raises(UnmixError, match="two outputs name the same file"):
        unmix(str(scene[0]), str(tmp_path / "a.tif"), str(tmp_path / "e.csv"),
              UnmixOptions(endmembers=3, method="vca-fcls"), residual_path=str(tmp_path / "a.tif"))
    lib = tmp_path / "d" / "truth_endmembers.csv"
    lib.parent.mkdir()
    names, E = spectra
    np.savetxt(lib, np.column_stack([WL, E.T]), delimiter=",", header="wavelength_nm,a,b,c", comments="")
    before = _digest(lib)
    refused(["synth", "--out", lib.parent, "-p", "2", "--library", lib], capsys,
            "an output would overwrite an input file")
    assert _digest(lib) == before and os.listdir(tmp_path) == ["d"] and os.listdir(lib.parent) == [lib.name]


def test_count_gives_a_number_unmix_accepts(tmp_path, capsys):
    """HySime may say 1 (or 43); count reports what an automatic unmix would use, and why."""
    from core.run.tasks import count_endmembers

    path = tmp_path / "three.tif"
    rng = np.random.default_rng(0)
    E = np.array([[0.2, 0.4, 0.6], [0.6, 0.4, 0.2]])
    from testutil import make_mixture_raster

    make_mixture_raster(path, E, rng.dirichlet(np.ones(2), 400).T.reshape(2, 20, 20))
    res = count_endmembers(str(path))
    assert res["endmembers"] == 2 and 2 <= res["endmembers"] <= res["bands"] - 1
    if res["hysime"] != 2:
        assert f"HySime estimated {res['hysime']}, unmixing uses 2" in res["warning"]


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


def test_train_one_stage_at_a_time_resuming_from_the_checkpoint(scene, tmp_path, capsys, tiny_engine):
    """train --stage hybridstu, then --stage abundance-diffusion --resume: the issue's staged workflow."""
    from core.deep.checkpoint import load_checkpoint

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


def test_train_the_endmember_diffusion_last_resuming_at_quality_best(scene, tmp_path, monkeypatch):
    """train --quality best --stage endmember-diffusion --resume: the last step of the staged workflow
    fits the endmember diffusion, then calibrates the endmembers on the scene's windows."""
    from core.deep.checkpoint import load_checkpoint
    from core.deep.engine import EngineConfig
    from core.deep.training import FitConfig

    preset = EngineConfig.preset.__func__

    def tiny_best(cls, quality="default"):  # the best preset (its refinement and calibration), few iterations
        cfg = preset(cls, "best")
        cfg.fit = {**FitConfig.from_dict(cfg.fit).to_dict(), "hybrid_iters": 3, "unet2d_iters": 3, "unet1d_iters": 3,
                   "pool": 8, "batch": 2, "patch": 16, "sample_pool": 8}
        return cfg

    monkeypatch.setattr(EngineConfig, "preset", classmethod(tiny_best))
    models = [tmp_path / f"m{i}.pt" for i in range(3)]
    assert main(["train", str(scene[0]), "-p", "3", "--quality", "best", "--stage", "hybridstu",
                 "--out", str(models[0]), "-q"]) == 0
    for i, stage in ((1, "abundance-diffusion"), (2, "endmember-diffusion")):
        assert main(["train", str(scene[0]), "--quality", "best", "--stage", stage, "--resume", str(models[i - 1]),
                     "--out", str(models[i]), "-q"]) == 0
    ck = load_checkpoint(str(models[2]))
    assert ck["meta"]["stages"] == ["hybridstu", "abundance-diffusion", "endmember-diffusion"]
    assert np.isfinite(ck["E"]).all() and ck["E"].min() >= 0


def test_supervised_training_keeps_the_reference_order(spectra, tmp_path, capsys, tiny_engine):
    """Band k of the reference abundances is endmember k of the model, whatever order VCA finds."""
    from testutil import make_mixture_raster

    from core.classical.metrics import sad_matrix
    from core.deep.checkpoint import load_checkpoint

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
