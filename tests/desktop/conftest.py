"""The desktop tier: the real ``qgis`` binary under Xvfb, a fresh profile with DiffUnmix enabled,
driven by ``driver.py`` (``qgis --code``); the tests assert on the report it writes.

One QGIS session serves the whole tier (about a minute): :func:`desktop` starts it once.
Skips, with the reason, only where QGIS or an X server cannot be started.
"""

import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from desktop_launcher import TIMEOUT_S, run_qgis_desktop  # noqa: E402


@pytest.fixture(scope="session")
def desktop(tmp_path_factory, plugin_parent_dir):
    """Run the driver in the QGIS desktop once; the parsed report (dict), with ``out`` its folder."""
    try:
        report, proc = run_qgis_desktop(tmp_path_factory.mktemp("desktop"), plugin_parent_dir)
    except FileNotFoundError as exc:
        pytest.skip(f"desktop tier: {exc}")
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"QGIS did not finish within {TIMEOUT_S} s: {(exc.stdout or '')[-2000:]}")
    if report is None:
        text = proc.stdout + proc.stderr
        if "xvfb-run: error" in text or "cannot open display" in text.lower() or "Xvfb failed" in text:
            pytest.skip(f"no X server could be started for the desktop tier: {text.strip()[-500:]}")
        pytest.fail(f"QGIS exited {proc.returncode} without a report:\n{text[-4000:]}")
    shots = os.environ.get("DIFFUNMIX_SCREENSHOTS")  # e.g. docs/screenshots: keep them for the README
    if shots:
        os.makedirs(shots, exist_ok=True)
        for name in os.listdir(report["out"]):
            if name.endswith(".png") and not name.startswith("spectra"):
                shutil.copy(os.path.join(report["out"], name), os.path.join(shots, name))
    return report


@pytest.fixture(scope="session")
def steps(desktop):
    """The report's steps: name -> what the driver recorded."""
    return desktop["steps"]
