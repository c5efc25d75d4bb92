"""Installing the full engine's dependency (PyTorch) from inside QGIS.

QGIS's Python often cannot take ``pip install --user``: Debian 12 and Ubuntu 23.04+ mark it
*externally managed*, the ``python3`` of a user's shell may be another interpreter (pyenv, conda),
and ``sys.executable`` inside QGIS is the QGIS binary itself. So the installer runs QGIS's own
interpreter, found from ``sys.exec_prefix`` / ``sys.base_prefix``, as
``python -m pip install --target <profile>/python/diffunmix-deps torch==…`` (the CPU build unless
the machine has an NVIDIA driver), shows pip's log while it runs, and then puts that folder on
``sys.path``: the full engine works in the same QGIS session, and in every later one (the plugin
adds the folder again at start-up, :func:`activate`).

Where on ``sys.path``: before the system's site-/dist-packages, after QGIS's own folders. PyTorch
needs newer versions of some pure-Python packages than a distribution ships (Debian 12's SymPy is
too old for torch 2.13: ``cannot import name 'equal_valued'``), so the copies pip put next to torch
must win; PyTorch needs neither NumPy nor GDAL, so the ones QGIS is built against stay untouched.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from typing import List, Optional, Sequence

from qgis.PyQt.QtCore import QCoreApplication, QProcess, QProcessEnvironment
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QVBoxLayout,
)

from ..core.options import TORCH_VERSION

#: folder name under <profile>/python for the installed packages
DEPS_FOLDER = "diffunmix-deps"
#: PyTorch's index of CPU-only wheels (a few hundred MB instead of several GB of CUDA libraries)
CPU_INDEX_URL = "https://download.pytorch.org/whl/cpu"
#: PyTorch's index of CUDA wheels: needed on Windows, where PyPI's torch is the CPU build (on Linux
#: PyPI's default torch wheels are the CUDA ones)
CUDA_INDEX_URL = "https://download.pytorch.org/whl/cu128"


#: pylupdate5 extracts ``translate("Installer", "…")`` calls
translate = QCoreApplication.translate


def deps_dir() -> str:
    """``<QGIS profile>/python/diffunmix-deps`` (where the installer puts packages)."""
    from qgis.core import QgsApplication

    return os.path.join(QgsApplication.qgisSettingsDirPath(), "python", DEPS_FOLDER)


def qgis_python() -> Optional[str]:
    """QGIS's own Python interpreter, or None when it cannot be found.

    Inside QGIS, ``sys.executable`` is the QGIS binary (or whatever ``python3`` the shell had),
    so the interpreter is looked up under ``sys.exec_prefix`` and ``sys.base_prefix``: the same
    version as the running Python (``bin/python3.11`` on Linux and macOS, ``python.exe`` or
    ``python3.exe`` on Windows/OSGeo4W).
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates: List[str] = []
    for prefix in dict.fromkeys((sys.exec_prefix, sys.base_prefix)):
        if os.name == "nt":
            candidates += [os.path.join(prefix, "python.exe"), os.path.join(prefix, "python3.exe")]
        else:
            candidates += [os.path.join(prefix, "bin", f"python{version}"), os.path.join(prefix, "bin", "python3")]
    return next((c for c in candidates if os.path.isfile(c) and os.access(c, os.X_OK)), None)


def has_nvidia_gpu() -> bool:
    """Whether an NVIDIA driver is present (then the CUDA build of PyTorch is worth its size)."""
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


def torch_build() -> str:
    """'cuda' with an NVIDIA GPU (or on macOS, where the default wheel is the right one), else 'cpu'."""
    return "cuda" if has_nvidia_gpu() or sys.platform == "darwin" else "cpu"


def pip_command(packages: Optional[Sequence[str]] = None, target: Optional[str] = None,
                build: Optional[str] = None) -> List[str]:
    """The argument list (after the interpreter) of the install.

    Args:
        packages: requirement specifiers; default ``torch==<TORCH_VERSION>``.
        target: install folder; default :func:`deps_dir`.
        build: 'cpu' or 'cuda' (default :func:`torch_build`); only used for the default packages.
            'cpu' adds PyTorch's CPU index as an extra index: its ``+cpu`` wheels rank above
            PyPI's CUDA ones of the same version, and pip's own configuration (index, proxy,
            find-links) stays in force. ``DIFFUNMIX_TORCH_CPU_INDEX`` overrides that index
            (empty: none, e.g. offline with a local wheel cache).
    """
    args = ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
            "--upgrade", "--target", target or deps_dir()]
    if packages is None:
        packages = [f"torch=={TORCH_VERSION}"]
        build = build or torch_build()
        index = os.environ.get("DIFFUNMIX_TORCH_CPU_INDEX", CPU_INDEX_URL)
        if build == "cpu" and index:
            args += ["--extra-index-url", index]
        elif build == "cuda" and sys.platform == "win32":
            args += ["--extra-index-url", CUDA_INDEX_URL]
    return args + list(packages)


def activate(folder: Optional[str] = None) -> bool:
    """Put the dependency folder on ``sys.path`` (once), just before the first site- or dist-packages
    folder (see the module doc), so its packages import in this session.

    Returns:
        True when the folder exists (and is now on ``sys.path``).
    """
    folder = folder or deps_dir()
    if not os.path.isdir(folder):
        return False
    if folder not in sys.path:
        index = next((i for i, p in enumerate(sys.path)
                      if os.path.basename(os.path.normpath(p)) in ("site-packages", "dist-packages")), len(sys.path))
        sys.path.insert(index, folder)
    importlib.invalidate_caches()
    return True


def explain_failure(log: str, exit_code: int) -> str:
    """One paragraph for the user from pip's output: pip missing, no network, or the log's last line."""
    text = log.lower()
    if "no module named pip" in text:
        return translate("Installer", "QGIS's Python has no pip. On Debian or Ubuntu install it with 'sudo apt install "
                   "python3-pip'; on Windows, run the OSGeo4W installer and add 'python3-pip'. Then try again.")
    if any(s in text for s in ("temporary failure in name resolution", "newconnectionerror",
                               "failed to establish a new connection", "network is unreachable",
                               "connection refused", "read timed out", "proxyerror")):
        return translate("Installer", "pip could not reach the package index: check the network connection "
                         "(or set a proxy in pip's configuration) and try again.")
    if "no matching distribution" in text or "could not find a version" in text:
        return translate("Installer", "pip found no matching package for this Python and platform (or could "
                         "not reach the package index). See the log for details.")
    last = [ln for ln in log.strip().splitlines() if ln.strip()]
    return translate("Installer", "The installation failed (pip exit code {code}): {line}").format(
        code=exit_code, line=last[-1] if last else "")


class InstallerDialog(QDialog):
    """*DiffUnmix ▸ Install Dependencies…*: what is missing, an *Install* button, pip's log.

    Args:
        parent: parent widget (the QGIS main window).
        packages: what to install (default PyTorch); the tests install a small package instead.
        on_installed: called (no arguments) after a successful install, once the folder is on
            ``sys.path`` (the plugin refreshes its algorithms so the full engine is offered).
    """

    def __init__(self, parent=None, packages: Optional[Sequence[str]] = None, on_installed=None):
        super().__init__(parent)
        self.setObjectName("DiffUnmixInstaller")
        self.setWindowTitle(translate("Installer", "DiffUnmix: install dependencies"))
        self.resize(720, 480)
        self.packages = list(packages) if packages is not None else None
        self.on_installed = on_installed
        self.python = qgis_python()
        self.target = deps_dir()
        #: None while not finished; then True or False
        self.finished_ok: Optional[bool] = None
        self.process: Optional[QProcess] = None

        self.status = QLabel(self.status_text())
        self.status.setWordWrap(True)
        self.status.setObjectName("status")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setObjectName("log")
        self.log.setPlaceholderText(translate("Installer", "pip's output appears here."))
        self.buttons = QDialogButtonBox(QDialogButtonBox.Close)
        self.install_button = self.buttons.addButton(translate("Installer", "Install"), QDialogButtonBox.AcceptRole)
        self.install_button.setObjectName("install")
        self.install_button.setEnabled(self.python is not None)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.progress)
        layout.addWidget(self.log, 1)
        layout.addWidget(self.buttons)

    def what(self) -> str:
        if self.packages is not None:
            return ", ".join(self.packages)
        build = translate("Installer", "CUDA build") if torch_build() == "cuda" else translate("Installer", "CPU build")
        return f"PyTorch {TORCH_VERSION} ({build})"

    def status_text(self) -> str:
        from .compat import torch_available

        state = (translate("Installer", "PyTorch is installed: the full engine is available.") if torch_available()
                 else translate("Installer", "PyTorch is not installed: only the classical method (VCA + FCLS) and "
                                "the endmember tools work."))
        if self.python is None:
            missing = translate("Installer", "QGIS's Python interpreter was not found under {prefix}, so nothing "
                               "can be installed from here.")
            return state + "\n\n" + missing.format(prefix=sys.exec_prefix)
        plan = translate("Installer", "Install installs {what} for QGIS's Python ({python}) into {target} with pip. "
                  "The full engine is available as soon as it finishes, without a restart.")
        return state + "\n\n" + plan.format(what=self.what(), python=self.python, target=self.target)

    def log_text(self) -> str:
        return self.log.toPlainText()

    def start(self) -> None:
        """Run pip (asynchronously; the dialog stays responsive and shows its output)."""
        if self.python is None or (self.process is not None and self.process.state() != QProcess.NotRunning):
            return
        os.makedirs(self.target, exist_ok=True)
        args = pip_command(self.packages, self.target)
        self.finished_ok = None
        self.install_button.setEnabled(False)
        self.progress.setRange(0, 0)  # busy: pip reports no overall progress
        self.log.appendPlainText(" ".join([self.python] + args))
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        for name in ("PYTHONPATH", "PYTHONHOME", "PIP_USER", "PIP_REQUIRE_VIRTUALENV"):
            env.remove(name)  # QGIS's own paths must not leak into pip's interpreter
        process.setProcessEnvironment(env)
        process.setProcessChannelMode(QProcess.MergedChannels)
        process.readyReadStandardOutput.connect(self._read)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self.process = process
        process.start(self.python, args)

    def _read(self) -> None:
        data = bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace")
        for line in data.splitlines():
            if line.strip():
                self.log.appendPlainText(line)

    def _error(self, error) -> None:
        if error == QProcess.FailedToStart:
            text = translate("Installer", "QGIS's Python ({python}) could not be started.")
            self._done(False, text.format(python=self.python))

    def _finished(self, exit_code: int, _status=None) -> None:
        self._read()
        if exit_code == 0:
            activate(self.target)
            message = (translate("Installer", "Installed. The full engine is available now (no restart needed).")
                       if self.packages is None else
                       translate("Installer", "Installed {what}: it imports now (no restart needed).").format(
                           what=self.what()))
            if self.packages is None:
                from .compat import torch_available

                if not torch_available():
                    self._done(False, translate("Installer", "pip finished but PyTorch still cannot be imported; "
                                            "see the log."))
                    return
            if self.on_installed is not None:
                self.on_installed()
            self._done(True, message)
        else:
            self._done(False, explain_failure(self.log_text(), exit_code))

    def _done(self, ok: bool, message: str) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if ok else 0)
        self.log.appendPlainText("")
        self.log.appendPlainText(message)
        self.status.setText(self.status_text() + "\n\n" + message)
        self.install_button.setEnabled(not ok and self.python is not None)
        self.finished_ok = ok

    def reject(self) -> None:
        if self.process is not None and self.process.state() != QProcess.NotRunning:
            self.process.kill()
            self.process.waitForFinished(3000)
        super().reject()
