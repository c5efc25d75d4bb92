"""The QGIS plugin-repository zip: metadata, translations, resources; no tests or caches."""

import configparser
import os
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_package_zip(tmp_path):
    out = tmp_path / "diffunmix.zip"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "package.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        meta = configparser.ConfigParser(interpolation=None)
        meta.read_string(zf.read("diffunmix/metadata.txt").decode("utf-8"))
    assert all(n.startswith("diffunmix/") for n in names)
    for required in ("diffunmix/metadata.txt", "diffunmix/__init__.py", "diffunmix/plugin/plugin.py",
                     "diffunmix/plugin/spectra_dock.py", "diffunmix/core/pipeline.py", "diffunmix/core/run/tasks.py",
                     "diffunmix/i18n/diffunmix_de.qm", "diffunmix/resources/styles/abundance.qml",
                     "diffunmix/resources/models/diffunmix_example.model3", "diffunmix/resources/icon.svg",
                     "diffunmix/plugin/installer.py", "diffunmix/plugin/widgets.py", "diffunmix/resources/spectra.svg",
                     "diffunmix/resources/help/diffunmix.html", "diffunmix/resources/help/diffunmix_de.html"):
        assert required in names, required
    assert not [n for n in names if "/tests/" in n or "__pycache__" in n or n.endswith((".pyc", ".ts"))
                or "/benchmarks/" in n or "/.venv/" in n or "/docs/" in n]
    assert meta["general"]["name"] == "DiffUnmix" and meta["general"]["category"] == "Raster"
