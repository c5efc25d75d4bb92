"""``train`` then ``apply`` (and ``unmix`` with MODEL) on a tiny scene with the full engine.

Slow: one fit of the deep engine at quality 'fast' (16×16×20, P = 3), shared by the module.
"""

import os

import numpy as np
import pytest
from qgis.core import QgsApplication, QgsProcessingException
from qgisutil import RecordingFeedback, read_raster, run_alg

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("diffunmix_plugin")]
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def model(diffunmix_plugin, tiny_scene, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "tiny.pt")
    feedback = RecordingFeedback()
    result = run_alg("diffunmix:train", {"INPUT": tiny_scene["path"], "ENDMEMBERS": 3, "QUALITY": 0, "SEED": 1,
                                         "OUTPUT": path}, feedback)
    return {"path": path, "result": result, "feedback": feedback}


def test_train_writes_a_checkpoint(model):
    result = model["result"]
    assert result["OUTPUT"] == model["path"] and os.path.getsize(model["path"]) > 1000
    assert result["ENDMEMBER_COUNT"] == 3 and len(result["ENDMEMBER_NAMES"].split(",")) == 3
    assert max(model["feedback"].progresses) == pytest.approx(100.0)
    assert model["feedback"].infos  # engine messages reach the Processing log
    from diffunmix.core.deep.checkpoint import load_checkpoint

    meta = load_checkpoint(model["path"])["meta"]
    assert meta["bands"] == 20 and meta["names"] == result["ENDMEMBER_NAMES"].split(",")


def test_apply_in_a_batch_of_two_rasters(model, tiny_scene, tmp_path):
    """The batch workhorse: one model, two rasters of the same sensor, separate outputs."""
    import processing
    from testutil import make_mixture_raster

    rng = np.random.default_rng(11)
    A2 = rng.dirichlet([0.5, 0.5, 0.5], size=12 * 20).T.reshape(3, 12, 20)
    second = str(tmp_path / "second.tif")
    make_mixture_raster(second, tiny_scene["E"], A2, wavelengths=tiny_scene["wavelengths"])
    alg = QgsApplication.processingRegistry().createAlgorithmById("diffunmix:apply")
    names = model["result"]["ENDMEMBER_NAMES"].split(",")
    outputs = []
    for i, (path, truth) in enumerate(((tiny_scene["path"], tiny_scene["A"]), (second, A2))):
        out = tmp_path / f"row{i}"
        out.mkdir()
        result = processing.run(alg, {"INPUT": path, "MODEL": model["path"], "OUTPUT": str(out / "a.tif"),
                                      "OUTPUT_ENDMEMBERS": str(out / "e.csv"),
                                      "OUTPUT_RESIDUAL": str(out / "res.tif")}, feedback=RecordingFeedback())
        assert result["ENDMEMBER_COUNT"] == 3 and result["ENDMEMBER_NAMES"].split(",") == names
        r = read_raster(result["OUTPUT"])
        assert r["shape"] == truth.shape[1:] and r["descriptions"] == names
        A = r["data"].reshape(3, -1)
        assert A.min() >= -1e-5 and np.allclose(A.sum(axis=0), 1.0, atol=1e-3)
        corr = np.corrcoef(truth.reshape(3, -1), A)[:3, 3:]
        assert np.all(corr.max(axis=1) > 0.7), corr  # every true map found again
        assert sorted(os.listdir(out)) == ["a.tif", "e.csv", "res.tif"]
        outputs.append(result)
    assert outputs[0]["OUTPUT"] != outputs[1]["OUTPUT"]
    # the endmembers are the model's, for every raster
    assert open(outputs[0]["OUTPUT_ENDMEMBERS"]).read() == open(outputs[1]["OUTPUT_ENDMEMBERS"]).read()


def test_unmix_with_saved_model_matches_apply(model, tiny_scene, tmp_path):
    common = {"INPUT": tiny_scene["path"], "MODEL": model["path"], "SEED": 0}
    a = run_alg("diffunmix:apply", dict(common, OUTPUT=str(tmp_path / "apply.tif"),
                                        OUTPUT_ENDMEMBERS=str(tmp_path / "apply.csv")))
    u = run_alg("diffunmix:unmix", dict(common, ENDMEMBERS=5, METHOD=0, OUTPUT=str(tmp_path / "unmix.tif"),
                                        OUTPUT_ENDMEMBERS=str(tmp_path / "unmix.csv")))
    assert u["ENDMEMBER_COUNT"] == 3 and u["ENDMEMBER_NAMES"] == a["ENDMEMBER_NAMES"]  # the model decides
    assert np.allclose(read_raster(a["OUTPUT"])["data"], read_raster(u["OUTPUT"])["data"], atol=1e-5)


def test_apply_to_other_bands_names_the_mismatch(model, mixture_scene, tmp_path):
    with pytest.raises(QgsProcessingException, match="band"):
        run_alg("diffunmix:apply", {"INPUT": mixture_scene["path"], "MODEL": model["path"],
                                    "OUTPUT": str(tmp_path / "a.tif"), "OUTPUT_ENDMEMBERS": str(tmp_path / "e.csv")})
    assert os.listdir(tmp_path) == []


def test_apply_writes_the_abundance_uncertainty_when_asked(model, tiny_scene, tmp_path):
    out = str(tmp_path / "u.tif")
    result = run_alg("diffunmix:apply", {"INPUT": tiny_scene["path"], "MODEL": model["path"],
                                         "OUTPUT": str(tmp_path / "a.tif"),
                                         "OUTPUT_ENDMEMBERS": str(tmp_path / "e.csv"),
                                         "UNCERTAINTY_SAMPLES": 3, "OUTPUT_UNCERTAINTY": out})
    assert result["OUTPUT_UNCERTAINTY"] == out
    r = read_raster(out)
    names = result["ENDMEMBER_NAMES"].split(",")
    assert r["descriptions"] == [f"{n} std" for n in names]
    assert r["data"].min() >= 0 and r["data"].max() > 0


def test_unmix_refuses_uncertainty_for_vca_fcls(tiny_scene, tmp_path):
    with pytest.raises(QgsProcessingException, match="the abundance uncertainty needs the full engine"):
        run_alg("diffunmix:unmix", {"INPUT": tiny_scene["path"], "ENDMEMBERS": 3, "METHOD": 1,
                                    "OUTPUT": str(tmp_path / "a.tif"), "OUTPUT_ENDMEMBERS": str(tmp_path / "e.csv"),
                                    "OUTPUT_UNCERTAINTY": str(tmp_path / "u.tif")})
    assert os.listdir(tmp_path) == []


def test_train_one_stage_resuming_from_a_model(model, tiny_scene, tmp_path):
    from diffunmix.core.deep.checkpoint import load_checkpoint

    with pytest.raises(QgsProcessingException, match="needs a checkpoint to resume from"):
        run_alg("diffunmix:train", {"INPUT": tiny_scene["path"], "STAGE": 2, "OUTPUT": str(tmp_path / "x.pt")})
    out = str(tmp_path / "resumed.pt")
    result = run_alg("diffunmix:train", {"INPUT": tiny_scene["path"], "STAGE": 2, "RESUME": model["path"],
                                         "QUALITY": 0, "OUTPUT": out})
    assert result["OUTPUT"] == out and result["ENDMEMBER_NAMES"] == model["result"]["ENDMEMBER_NAMES"]
    before, after = load_checkpoint(model["path"]), load_checkpoint(out)
    assert after["meta"]["stages"] == ["hybridstu", "abundance-diffusion"]  # 'fast' fits no endmember diffusion
    np.testing.assert_allclose(after["E"], before["E"])
    assert sorted(os.listdir(tmp_path)) == ["resumed.pt"]
