"""The dependency installer for real: PyTorch itself, into a fresh QGIS profile, then the full engine in
the same QGIS session (no restart). Not part of ``make test`` (it installs ~200 MB to a few GB).

Starts the real QGIS desktop under Xvfb (tests/desktop's launcher and driver) with QGIS's own Python
(no venv, so no torch), synthesizes a scene, presses *Install* in Raster ▸ DiffUnmix ▸ Install
Dependencies…, waits for pip, then runs ``diffunmix:unmix`` with the full engine (Fast) in the same
session. Writes benchmarks/results/install_torch.json: install time (s, wall clock of pip), whether
torch imports afterwards, the METHOD default after the install, the full engine's run time (what was
measured is kept when QGIS runs past the time limit).

pip uses its own configuration (index, proxy, local wheel cache such as PIP_FIND_LINKS); set
DIFFUNMIX_TORCH_CPU_INDEX="" to keep PyTorch's CPU index out (offline, local wheels only).

Usage (repo root): .venv/bin/python benchmarks/install_torch.py
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "desktop")]

from conftest import PLUGIN_PARENT  # noqa: E402  (tests/conftest.py: the plugin as package 'diffunmix')
from desktop_launcher import run_qgis_desktop  # noqa: E402

OUT = os.path.join(ROOT, "benchmarks", "results", "install_torch.json")
TIMEOUT_S = 1800


def main() -> dict:
    base = Path(tempfile.mkdtemp(prefix="diffunmix-install-torch-"))
    try:
        report, proc = run_qgis_desktop(base, PLUGIN_PARENT, timeout_s=TIMEOUT_S, extra_env={
            "DIFFUNMIX_DESKTOP_STEPS": "startup,install_torch,full_engine",
            "DIFFUNMIX_TORCH_CPU_INDEX": os.environ.get("DIFFUNMIX_TORCH_CPU_INDEX", "")})
    except subprocess.TimeoutExpired:  # keep what was measured before the limit
        path = base / "out" / "report.json"
        report = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        proc = None
        if report is not None:
            report["steps"].setdefault("full_engine", {})["timed_out_after_s"] = TIMEOUT_S
    if report is None:
        raise SystemExit(f"QGIS wrote no report: {proc and (proc.stdout + proc.stderr)[-3000:]}")
    rec = {**report["steps"].get("install_torch", {}),
           **{f"full_engine_{k}": v for k, v in report["steps"].get("full_engine", {}).items()}}
    result = {
        "what": "Install Dependencies… in the real QGIS 3.22 desktop (Xvfb), fresh profile, then the full "
                "engine in the same session",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1_5_15_min_at_end": [round(x, 1) for x in os.getloadavg()]},
        "metric": "install_seconds: wall-clock seconds from pressing Install to pip's exit; "
                  "full_engine_seconds_unmix: diffunmix:unmix METHOD=full QUALITY=fast on a 24x24x224 synthetic "
                  "scene (3 endmembers, 40 dB), in the same QGIS session",
        **{k: v for k, v in rec.items() if k != "log_tail"},
        "log_tail": rec.get("log_tail", "")[-1500:],
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
