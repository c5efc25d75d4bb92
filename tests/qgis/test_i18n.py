"""German translation: every user-visible string translated, loaded for a German QGIS locale."""

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import QCoreApplication

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TS = os.path.join(ROOT, "i18n", "diffunmix_de.ts")
QM = os.path.join(ROOT, "i18n", "diffunmix_de.qm")
SAME_IN_GERMAN = {"DiffUnmix", "&DiffUnmix", "Band", "RGB: {r} / {g} / {b}"}


def unfinished(ts_path):
    root = ET.parse(ts_path).getroot()
    return [(ctx.findtext("name"), m.findtext("source")) for ctx in root.iter("context")
            for m in ctx.iter("message")
            if m.find("translation").get("type") == "unfinished" or not (m.findtext("translation") or "").strip()]


def test_ts_is_complete_and_compiled():
    assert unfinished(TS) == []
    assert os.path.isfile(QM) and os.path.getsize(QM) > 1000


@pytest.mark.skipif(shutil.which("pylupdate5") is None, reason="pylupdate5 (pyqt5-dev-tools) not installed")
def test_ts_covers_every_string_in_the_sources(tmp_path):
    """pylupdate5 over plugin/ finds no string the .ts does not translate (the .ts is up to date)."""
    ts = tmp_path / "check.ts"
    shutil.copy(TS, ts)
    sources = [os.path.join(d, f) for d in (os.path.join(ROOT, "plugin"), os.path.join(ROOT, "plugin", "algorithms"))
               for f in sorted(os.listdir(d)) if f.endswith(".py")]
    proc = subprocess.run(["pylupdate5", "-noobsolete", *sources, "-ts", str(ts)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert unfinished(ts) == []


def _strings(alg):
    """The user-visible strings of an algorithm (fresh instance)."""
    out = [alg.displayName(), alg.group(), ",".join(alg.tags())]
    for p in alg.parameterDefinitions():
        out += [p.description(), p.help()]
        if hasattr(p, "options"):
            out += list(p.options())
    out += [o.description() for o in alg.outputDefinitions()]
    return out


@pytest.fixture
def german_locale():
    settings = QgsSettings()
    saved = settings.value("locale/userLocale", None)
    settings.setValue("locale/userLocale", "de_DE")
    yield
    if saved is None:
        settings.remove("locale/userLocale")
    else:
        settings.setValue("locale/userLocale", saved)


def test_german_locale_translates_the_plugin(qgis_app, qgis_processing, german_locale):
    import diffunmix

    registry = QgsApplication.processingRegistry()
    ids = ["unmix", "train", "apply", "estimatecount", "extractendmembers", "fcls", "evaluate", "synthesize"]
    QgsSettings().setValue("locale/userLocale", "en_US")  # no English .qm: the sources' strings
    plugin = diffunmix.classFactory(None)
    plugin.initProcessing()
    try:
        english = {i: _strings(registry.createAlgorithmById(f"diffunmix:{i}")) for i in ids}
    finally:
        plugin.unload()
    assert plugin.translator is None

    QgsSettings().setValue("locale/userLocale", "de_DE")
    plugin = diffunmix.classFactory(None)
    plugin.initProcessing()
    try:
        assert plugin.translator is not None
        assert QCoreApplication.translate("UnmixAlgorithm", "Unmix hyperspectral raster") == \
            "Hyperspektrales Raster entmischen"
        assert plugin.tr("Install Dependencies…") == "Abhängigkeiten installieren…"
        unmix = registry.createAlgorithmById("diffunmix:unmix")
        assert unmix.displayName() == "Hyperspektrales Raster entmischen"
        assert unmix.group() == "Entmischung"
        assert unmix.parameterDefinition("OUTPUT").description() == "Abundanzen"
        assert "Endmember-Spektren" in unmix.shortHelpString()
        german = {i: _strings(registry.createAlgorithmById(f"diffunmix:{i}")) for i in ids}
        for i in ids:
            same = [e for e, g in zip(english[i], german[i]) if e == g and e and e not in SAME_IN_GERMAN]
            assert same == [], f"{i}: untranslated {same}"
        from diffunmix.plugin.compat import torch_missing_message

        assert "torch==" in torch_missing_message()
        assert torch_missing_message().startswith("Die vollständige DiffUnmix-Engine")
    finally:
        plugin.unload()
    assert QCoreApplication.translate("UnmixAlgorithm", "Unmix hyperspectral raster") == "Unmix hyperspectral raster"
