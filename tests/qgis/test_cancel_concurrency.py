"""``diffunmix:unmix`` in a real QGIS: cancelled from the Processing feedback mid-run, and run
twice at once as background tasks (``QgsProcessingAlgRunnerTask`` on the application's task
manager, as the Processing toolbox runs them).

A cancelled run raises ``QgsProcessingException`` within seconds, writes nothing and leaves an
earlier run's outputs untouched. Concurrent runs give exactly the arrays of the same runs made
one at a time.

The full engine runs from a saved model (an unfitted engine saved as a real checkpoint, with the
HybridSTU correction and two DDIM steps on): fitting it at quality 'fast' takes minutes on two
cores, too long for this tier.
"""

import os
import threading
import time

import numpy as np
import pytest
from qgis.core import (
    QgsApplication,
    QgsProcessingAlgRunnerTask,
    QgsProcessingContext,
    QgsProcessingException,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgisutil import RecordingFeedback, read_raster

pytestmark = pytest.mark.usefixtures("diffunmix_plugin")
torch = pytest.importorskip("torch")

WL = np.linspace(450.0, 2400.0, 20)
STOP_WITHIN_S = 5.0


def snapshot(folder):
    return {n: (folder / n).read_bytes() for n in sorted(os.listdir(folder))}


def params(scene, folder, **extra):
    folder.mkdir(exist_ok=True)
    return {"INPUT": str(scene), "ENDMEMBERS": 3, "METHOD": 1, "SEED": 0, "OUTPUT": str(folder / "abundances.tif"),
            "OUTPUT_ENDMEMBERS": str(folder / "endmembers.csv"), "OUTPUT_REPORT": str(folder / "report.json"),
            **extra}


def run(parameters, feedback=None):
    import processing

    return processing.run("diffunmix:unmix", parameters, feedback=feedback or RecordingFeedback())


@pytest.fixture(scope="module")
def scenes(spectra, tmp_path_factory):
    """Two mixtures with wavelengths: 'windows' 600×1024 (three read windows), 'tiles' 200×200 (four tiles)."""
    from testutil import make_mixture_raster

    folder = tmp_path_factory.mktemp("cc")
    rng = np.random.default_rng(3)
    E = spectra(20)
    paths = {}
    for name, (h, w) in (("windows", (600, 1024)), ("tiles", (200, 200))):
        A = rng.dirichlet(np.full(3, 0.5), size=h * w).T.reshape(3, h, w)
        paths[name] = folder / f"{name}.tif"
        make_mixture_raster(paths[name], E, A, wavelengths=WL, dtype="int16", scale=1e-4)
    return paths, E


@pytest.fixture(scope="module")
def model(scenes, tmp_path_factory):
    """An unfitted engine saved as a real checkpoint: FCLS prior + HybridSTU correction + 2 DDIM steps."""
    from diffunmix.core.deep.checkpoint import save_checkpoint
    from diffunmix.core.deep.engine import Engine, EngineConfig
    from diffunmix.core.deep.run import checkpoint_payload

    E = scenes[1]
    torch.manual_seed(0)
    eng = Engine(20, E, ["a", "b", "c"], EngineConfig.preset("fast"), float(E.mean()), "cpu")
    for p in eng.unet2d.parameters():  # a refinement that changes the abundances (its head starts at zero)
        torch.nn.init.normal_(p, 0.0, 0.02)
    assert eng.refine_cfg.steps_2d == 2 and float(eng.hybrid.correction) == 1.0
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_checkpoint(str(path), checkpoint_payload(eng, list(range(20)), WL, {}))
    return str(path)


# ------------------------------------------------------------------ cancelled from the feedback
class CancelAt(RecordingFeedback):
    """Cancels once the progress passes ``percent`` (as a user pressing Cancel); records when."""

    def __init__(self, percent):
        super().__init__(cancel_after_progress=percent)
        self.cancelled_at = None

    def cancel(self):
        if self.cancelled_at is None:
            self.cancelled_at = time.perf_counter()
        super().cancel()


@pytest.mark.parametrize("method, percent", [("vca-fcls", 20), ("full", 86)])
def test_cancel_from_the_feedback_mid_run(scenes, model, tmp_path, method, percent):
    """vca-fcls: cancelled after the first of three windows is written (15 → 95 %); full engine:
    after the first of four tiles (85 → 98 %)."""
    out = tmp_path / "out"
    scene = scenes[0]["windows" if method == "vca-fcls" else "tiles"]
    run(params(scene, out))  # an earlier run's outputs
    before = snapshot(out)
    assert sorted(before) == ["abundances.tif", "endmembers.csv", "report.json"]
    extra = {"MODEL": model, "METHOD": 0} if method == "full" else {}
    feedback = CancelAt(percent)
    with pytest.raises(QgsProcessingException, match="[Cc]ancel"):
        run(params(scene, out, SEED=1, **extra), feedback)
    assert feedback.cancelled_at is not None and feedback.isCanceled()
    assert time.perf_counter() - feedback.cancelled_at < STOP_WITHIN_S
    assert percent <= max(feedback.progresses) < 98
    assert snapshot(out) == before  # nothing written, nothing partial, nothing changed


# ------------------------------------------------------------------ two runs at once
class Rendezvous(RecordingFeedback):
    """Holds the run at its first call into the feedback (the engine asking whether to stop)
    until the other run got there too, so both are certainly in flight at the same time; keeps
    the threads that made the calls."""

    def __init__(self, barrier):
        super().__init__()
        self.barrier = barrier
        self.threads = set()

    def _meet(self):
        if not self.threads:
            self.barrier.wait(timeout=60)
        self.threads.add(threading.current_thread().name)

    def isCanceled(self):  # noqa: N802 (the plugin's adapter calls these from Python)
        self._meet()
        return super().isCanceled()

    def setProgress(self, progress):  # noqa: N802
        self._meet()
        super().setProgress(progress)


def run_as_tasks(runs, timeout=240):
    """Start every (parameters, feedback) as a QgsProcessingAlgRunnerTask at once; wait for all."""
    manager = QgsApplication.taskManager()
    results, tasks, contexts = {}, [], []
    for i, (parameters, feedback) in enumerate(runs):
        alg = QgsApplication.processingRegistry().createAlgorithmById("diffunmix:unmix")
        context = QgsProcessingContext()
        task = QgsProcessingAlgRunnerTask(alg, parameters, context, feedback)
        task.executed.connect(lambda ok, res, i=i: results.__setitem__(i, (ok, res)))
        contexts.append(context)  # the context must outlive the task
        tasks.append(task)
        manager.addTask(task)
    deadline = time.monotonic() + timeout
    while len(results) < len(runs) and time.monotonic() < deadline:
        QCoreApplication.processEvents()
        time.sleep(0.02)
    assert len(results) == len(runs), f"tasks still running after {timeout} s"
    return [results[i] for i in range(len(runs))]


@pytest.mark.timeout(400)
@pytest.mark.parametrize("runs", ["vca-fcls + vca-fcls", "vca-fcls + full", "full + full"])
def test_two_runs_at_once_match_runs_alone(scenes, model, tmp_path, runs):
    """VCA + FCLS (600×1024) next to VCA + FCLS (200×200, P = 4) or the full engine (200×200);
    or the full engine twice (different seeds). Full-engine runs take turns (they share torch's
    global random generator): run together, their DDIM noise used to interleave and their
    abundances differed from the same runs alone by up to 3e-4."""
    first, second = runs.split(" + ")
    extra = {"MODEL": model, "METHOD": 0} if second == "full" else {"ENDMEMBERS": 4}

    def both(tag):
        return [params(scenes[0]["windows" if first == "vca-fcls" else "tiles"], tmp_path / f"{tag}1",
                       **({"MODEL": model, "METHOD": 0} if first == "full" else {})),
                params(scenes[0]["tiles"], tmp_path / f"{tag}2", SEED=5, **extra)]

    alone = []
    for p in both("alone"):
        run(p)
        alone.append(read_raster(p["OUTPUT"])["data"])

    together = both("together")
    barrier = threading.Barrier(2)
    feedbacks = [Rendezvous(barrier), Rendezvous(barrier)]
    outcomes = run_as_tasks(list(zip(together, feedbacks)))

    for (ok, _), fb in zip(outcomes, feedbacks):
        assert ok, fb.errors
        assert max(fb.progresses) == pytest.approx(100.0)
        assert fb.threads and threading.main_thread().name not in fb.threads  # in the task manager's workers
    assert not barrier.broken and barrier.n_waiting == 0  # both runs were in flight together
    assert outcomes[1][1]["ENDMEMBER_COUNT"] == (3 if second == "full" else 4)
    for i, p in enumerate(together):
        np.testing.assert_array_equal(read_raster(p["OUTPUT"])["data"], alone[i])
        assert sorted(os.listdir(tmp_path / f"together{i + 1}")) == ["abundances.tif", "endmembers.csv",
                                                                     "report.json"]
    waited = [any(m.startswith("waiting for another full-engine run") for m in fb.infos) for fb in feedbacks]
    assert sum(waited) == (1 if runs == "full + full" else 0)


def test_train_queued_behind_a_full_engine_run_can_be_cancelled(scenes, tmp_path):
    """``diffunmix:train`` takes its turn on the engine like ``unmix``; cancelled while it waits."""
    import processing
    from diffunmix.core.run.context import engine_turn

    class CancelWhileWaiting(RecordingFeedback):
        def pushInfo(self, info):  # noqa: N802
            super().pushInfo(info)
            if info.startswith("waiting for another full-engine run"):
                self.cancel()

    feedback = CancelWhileWaiting()
    with engine_turn():  # a full-engine run of this QGIS holds the engine
        with pytest.raises(QgsProcessingException, match="[Cc]ancel"):
            processing.run("diffunmix:train", {"INPUT": str(scenes[0]["tiles"]), "ENDMEMBERS": 3, "QUALITY": 0,
                                               "OUTPUT": str(tmp_path / "model.pt")}, feedback=feedback)
    assert feedback.infos == ["waiting for another full-engine run in this process to finish"]
    assert os.listdir(tmp_path) == []
