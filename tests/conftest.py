"""Shared test set-up: import paths for every tier.

* the repository root goes on ``sys.path`` so the engine imports as ``core``;
* ``tests/`` goes on ``sys.path`` for ``testutil``;
* the plugin imports as the ``diffunmix`` package, as QGIS installs it: a
  temporary folder holding a ``diffunmix`` symlink to the repository root is
  put on ``sys.path`` (the e2e tier also uses it as ``QGIS_PLUGINPATH``).
"""

import atexit
import os
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _make_plugin_parent() -> str:
    parent = tempfile.mkdtemp(prefix="diffunmix-plugins-")
    link = os.path.join(parent, "diffunmix")
    os.symlink(ROOT, link, target_is_directory=True)

    def _cleanup():  # remove the link itself, never what it points to
        try:
            os.unlink(link)
            os.rmdir(parent)
        except OSError:
            pass

    atexit.register(_cleanup)
    return parent


PLUGIN_PARENT = _make_plugin_parent()

for _path in (ROOT, os.path.join(ROOT, "tests"), PLUGIN_PARENT):
    if _path not in sys.path:
        sys.path.insert(0, _path)


@pytest.fixture(scope="session")
def repo_root() -> str:
    """The repository root (= the plugin folder)."""
    return ROOT


@pytest.fixture(scope="session")
def plugin_parent_dir() -> str:
    """A folder whose ``diffunmix`` entry is a symlink to the repository root."""
    return PLUGIN_PARENT
