"""The e2e tier's QGIS environment: a throw-away profile with the plugin enabled."""

import os
import sysconfig

import pytest
from testutil import QGIS_PROCESS, qgis_process


@pytest.fixture(scope="session")
def qgis_env(tmp_path_factory, plugin_parent_dir):
    """Environment for qgis_process with the plugin enabled in a fresh profile."""
    if not os.access(QGIS_PROCESS, os.X_OK):
        pytest.skip(f"{QGIS_PROCESS} not installed")
    home = tmp_path_factory.mktemp("qgis-home")
    site_packages = sysconfig.get_paths()["purelib"]  # the venv's, where torch lives
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QGIS_", "PYTEST_"))}
    env.update(
        HOME=str(home),
        QGIS_PLUGINPATH=plugin_parent_dir,
        QGIS_CUSTOM_CONFIG_PATH=str(home / "profile"),
        QT_QPA_PLATFORM="offscreen",
        PYTHONPATH=os.pathsep.join(p for p in (site_packages, os.environ.get("PYTHONPATH")) if p),
    )
    proc = qgis_process(env, "plugins", "enable", "diffunmix")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "* diffunmix" in proc.stdout, proc.stdout
    return env
