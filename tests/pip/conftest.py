"""The pip-only tier: the engine installed with ``pip install .[engine]`` into a venv WITHOUT system site
packages (so no ``osgeo``: raster I/O through rasterio's wheel and its own libgdal), driven as a user
would, through the ``diffunmix`` command, and compared with the GDAL backend of the project's venv.

The venv lives in a cache folder (``DIFFUNMIX_PIP_VENV``, default ``~/.cache/diffunmix/pip-venv``): its
dependencies are installed once per pyproject.toml (pip's cache and the torch wheel on disk make that
a minute or two), the package itself is reinstalled from a clean copy of the sources on every session.
The project's .venv is never touched.
"""

import hashlib
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _p in (ROOT, os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "core", "hostile")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

#: what a wheel is built from (the package's sources; not the plugin, tests or build leftovers)
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "__init__.py", "metadata.txt", "core", "resources/library")


def venv_dir() -> str:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("DIFFUNMIX_PIP_VENV") or os.path.join(cache, "diffunmix", "pip-venv")


def _run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _copy_sources(dest: str) -> str:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    for rel in SOURCES:
        src, dst = os.path.join(ROOT, rel), os.path.join(dest, rel)
        if os.path.isdir(src):
            shutil.copytree(src, dst, ignore=ignore)
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst)
    return dest


def _numeric_pins() -> str:
    """The project venv's NumPy and SciPy as pip constraints: the same numeric stack on both sides, so the
    two runs differ only in raster I/O (with NumPy 2 the full engine's abundances move by ~1e-5)."""
    import numpy
    import scipy

    return f"numpy=={numpy.__version__}\nscipy=={scipy.__version__}\n"


def build_venv(tmp: str) -> str:
    """Create or refresh the pip-only venv; returns its folder."""
    venv = venv_dir()
    py = os.path.join(venv, "bin", "python")
    pins = _numeric_pins()
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        stamp = hashlib.sha256(fh.read() + pins.encode()).hexdigest()
    stamp_file = os.path.join(venv, ".stamp-deps")
    fresh = not (os.path.exists(stamp_file) and open(stamp_file).read() == stamp and os.access(py, os.X_OK))
    if not os.access(py, os.X_OK):
        shutil.rmtree(venv, ignore_errors=True)
        _run(["/usr/bin/python3", "-m", "venv", venv])  # no --system-site-packages: Debian's GDAL stays out
    src = _copy_sources(os.path.join(tmp, "src"))
    constraints = os.path.join(tmp, "constraints.txt")
    with open(constraints, "w") as fh:
        fh.write(pins)
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if fresh:  # pip keeps what already fits (torch), so a changed pin costs seconds
        _run(pip + ["-c", constraints, f"{src}[engine]"], timeout=1200)
        with open(stamp_file, "w") as fh:
            fh.write(stamp)
    else:  # dependencies already there: only the package, from the current sources
        _run(pip + ["--no-deps", "--force-reinstall", src], timeout=600)
    return venv


@pytest.fixture(scope="session")
def pip_venv(tmp_path_factory):
    """The pip-only venv with the current sources installed: its folder."""
    return build_venv(str(tmp_path_factory.mktemp("pip-build")))
