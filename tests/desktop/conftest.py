"""The desktop tier: the real ``qgis`` binary under Xvfb, a fresh profile with DiffUnmix enabled,
driven by ``driver.py`` (``qgis --code``); the tests assert on the report it writes.

One QGIS session serves the whole tier (about a minute): :func:`desktop` starts it once.
Skips, with the reason, only where QGIS or an X server cannot be started.
"""

import json
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "driver.py")
#: a small pure-Python package, not shipped with QGIS, for the installer's real pip install
PIP_SPEC = "tomli_w==1.0.0"
TIMEOUT_S = 420


def _profile(root) -> str:
    """A fresh QGIS profile folder with DiffUnmix enabled, tips and news off."""
    ini = root / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[PythonPlugins]\ndiffunmix=true\n\n[qgis]\nshowTips322=false\ncheckVersion=false\n"
                   "\n[core]\nNewsFeed\\httpsfeedqgisorg\\disabled=true\n", encoding="utf-8")
    return str(root)


@pytest.fixture(scope="session")
def desktop(tmp_path_factory, plugin_parent_dir):
    """Run the driver in the QGIS desktop once; the parsed report (dict), with ``out`` its folder."""
    qgis, xvfb = shutil.which("qgis"), shutil.which("xvfb-run")
    if qgis is None or xvfb is None:
        pytest.skip(f"desktop tier needs the qgis binary and xvfb-run (found qgis={qgis}, xvfb-run={xvfb})")
    base = tmp_path_factory.mktemp("desktop")
    out = base / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QGIS_", "PYTEST_", "QT_QPA"))}
    env.update(HOME=str(base), QGIS_CUSTOM_CONFIG_PATH=_profile(base / "config"), QGIS_PLUGINPATH=plugin_parent_dir,
               DIFFUNMIX_DESKTOP_OUT=str(out), DIFFUNMIX_DESKTOP_PIP_SPEC=PIP_SPEC, LC_ALL="C.UTF-8",
               PYTHONPATH="")  # QGIS's own Python only: no venv, so no torch (a new user's machine)
    cmd = [xvfb, "-a", "-s", "-screen 0 1600x1000x24", qgis, "--nologo", "--noversioncheck", "--code", DRIVER]
    try:
        proc = subprocess.run(cmd, env=env, cwd=str(base), capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"QGIS did not finish within {TIMEOUT_S} s: {(exc.stdout or '')[-2000:]}")
    report_path = out / "report.json"
    if not report_path.exists():
        text = proc.stdout + proc.stderr
        if "xvfb-run: error" in text or "cannot open display" in text.lower() or "Xvfb failed" in text:
            pytest.skip(f"no X server could be started for the desktop tier: {text.strip()[-500:]}")
        pytest.fail(f"QGIS exited {proc.returncode} without a report:\n{text[-4000:]}")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    report["out"] = str(out)
    report["stderr"] = proc.stderr[-20000:]
    shots = os.environ.get("DIFFUNMIX_SCREENSHOTS")  # e.g. resources/screenshots: keep them for the README
    if shots:
        os.makedirs(shots, exist_ok=True)
        for name in os.listdir(out):
            if name.endswith(".png") and not name.startswith("spectra"):
                shutil.copy(out / name, os.path.join(shots, name))
    return report


@pytest.fixture(scope="session")
def steps(desktop):
    """The report's steps: name -> what the driver recorded."""
    return desktop["steps"]
