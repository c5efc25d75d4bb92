"""pyproject.toml installs the whole engine as ``diffunmix.core`` (every package of core/, the bundled
library) with the plugin's version; the QGIS zip still holds the plugin layout."""

import fnmatch
import os
import subprocess
import sys
import tomllib
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        return tomllib.load(fh)


def test_every_core_package_is_in_the_wheel():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {"diffunmix"}
    for folder, dirs, files in os.walk(os.path.join(ROOT, "core")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        if "__init__.py" in files:
            found.add("diffunmix." + os.path.relpath(folder, ROOT).replace(os.sep, "."))
    assert listed == found
    data = _pyproject()["tool"]["setuptools"]["package-data"]["diffunmix"]
    from core.io.library import bundled_library_path

    rel = os.path.relpath(bundled_library_path(), ROOT)
    assert any(fnmatch.fnmatch(rel, pattern) for pattern in data), (rel, data)


def test_version_and_console_script():
    project = _pyproject()["project"]
    with open(os.path.join(ROOT, "metadata.txt"), encoding="utf-8") as fh:
        version = next(line.split("=", 1)[1].strip() for line in fh if line.startswith("version="))
    assert project["version"] == version
    assert project["scripts"] == {"diffunmix": "diffunmix.core.cli:main"}
    assert project["optional-dependencies"]["engine"] == ["torch==2.13.0"]
    assert not any(d.lower().startswith(("gdal", "torch")) for d in project["dependencies"])


def test_qgis_zip_keeps_the_plugin_layout(tmp_path):
    out = tmp_path / "diffunmix.zip"
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "package.py"), "--out", str(out)], check=True,
                   capture_output=True)
    names = zipfile.ZipFile(out).namelist()
    assert "diffunmix/metadata.txt" in names and "diffunmix/core/io/rasterio_backend.py" in names
    assert "diffunmix/core/io/gdal_backend.py" in names and "diffunmix/plugin/plugin.py" in names
    assert not any(n.startswith(("diffunmix/tests", "diffunmix/build", "diffunmix/diffunmix.egg-info"))
                   for n in names)
