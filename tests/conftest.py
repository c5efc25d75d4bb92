"""Shared test set-up: import paths for every tier.

* the repository root goes on ``sys.path`` so the engine imports as ``core``;
* ``tests/`` goes on ``sys.path`` for ``testutil``;
* the plugin imports as the ``diffunmix`` package, as QGIS installs it: a
  temporary folder holding a ``diffunmix`` symlink to the repository root is
  put on ``sys.path`` (the e2e tier also uses it as ``QGIS_PLUGINPATH``).
"""

import hashlib
import os
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _make_plugin_parent() -> str:
    """``<tmp>/diffunmix-plugins-<hash of ROOT>/diffunmix`` → ROOT, made once and reused.

    Keyed by the checkout, so parallel sessions of one checkout share it and other
    checkouts get their own; nothing to clean up, nothing left behind by a crash.
    """
    key = hashlib.sha1(os.path.realpath(ROOT).encode()).hexdigest()[:12]
    parent = os.path.join(tempfile.gettempdir(), f"diffunmix-plugins-{key}")
    os.makedirs(parent, exist_ok=True)
    link = os.path.join(parent, "diffunmix")
    if os.path.realpath(link) != os.path.realpath(ROOT):
        staged = f"{link}.{os.getpid()}"
        os.symlink(ROOT, staged, target_is_directory=True)
        os.replace(staged, link)  # atomic, also over a stale link
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
