"""Start the real QGIS desktop under Xvfb in a fresh profile with DiffUnmix enabled, driven by
``driver.py`` (``qgis --code``); used by the desktop tier (conftest.py) and benchmarks/install_torch.py."""

import json
import os
import shutil
import signal
import subprocess

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


def run_qgis_desktop(base, plugin_parent_dir, extra_env=None, timeout_s=TIMEOUT_S):
    """Start the real QGIS desktop under Xvfb in a fresh profile under ``base`` with DiffUnmix enabled,
    running ``driver.py``; wait for it to quit.

    Returns:
        (report dict or None when QGIS wrote none, the completed process); the report's ``out`` is
        the folder the driver wrote to (screenshots).

    Raises:
        FileNotFoundError: no qgis binary or xvfb-run.
        subprocess.TimeoutExpired: QGIS did not quit in time (it and its X server are stopped; the
            driver's report so far stays in ``base/out/report.json``).
    """
    qgis, xvfb = shutil.which("qgis"), shutil.which("xvfb-run")
    if qgis is None or xvfb is None:
        raise FileNotFoundError(f"the desktop needs the qgis binary and xvfb-run (found qgis={qgis}, "
                                f"xvfb-run={xvfb})")
    out = base / "out"
    out.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QGIS_", "PYTEST_", "QT_QPA"))}
    env.update(HOME=str(base), QGIS_CUSTOM_CONFIG_PATH=_profile(base / "config"), QGIS_PLUGINPATH=plugin_parent_dir,
               DIFFUNMIX_DESKTOP_OUT=str(out), DIFFUNMIX_DESKTOP_PIP_SPEC=PIP_SPEC, LC_ALL="C.UTF-8",
               PYTHONPATH="")  # QGIS's own Python only: no venv, so no torch (a new user's machine)
    env.update(extra_env or {})
    cmd = [xvfb, "-a", "-s", "-screen 0 1600x1000x24", qgis, "--nologo", "--noversioncheck", "--code", DRIVER]
    # a session of its own: on a timeout the whole group (xvfb-run, Xvfb, qgis) is stopped, not only xvfb-run
    with subprocess.Popen(cmd, env=env, cwd=str(base), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as popen:
        try:
            stdout, stderr = popen.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            stdout, stderr = popen.communicate()
            raise subprocess.TimeoutExpired(cmd, timeout_s, output=stdout, stderr=stderr) from None
    proc = subprocess.CompletedProcess(cmd, popen.returncode, stdout, stderr)
    report_path = out / "report.json"
    if not report_path.exists():
        return None, proc
    report = json.loads(report_path.read_text(encoding="utf-8"))
    report["out"] = str(out)
    report["stderr"] = proc.stderr[-20000:]
    return report, proc


