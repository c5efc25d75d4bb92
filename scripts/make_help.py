"""Write the plugin's help pages (shipped in the plugin, opened by the dialogs' Help button):
``resources/help/diffunmix.html`` and one per translation (``diffunmix_de.html``), made from each
algorithm's own help text (``shortHelpString``), so the pages never drift from the dialogs.

Usage (repo root): QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_help.py
"""

import html
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELP_DIR = os.path.join(ROOT, "resources", "help")

PAGE = """<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em;line-height:1.4}}
h2{{border-bottom:1px solid #ccc;padding-top:.5em}} dt{{margin-top:.6em}} code{{color:#555}}
nav a{{margin-right:1em}}</style></head><body>
<h1>{title}</h1>
<p>{intro}</p>
<nav>{nav}</nav>
{sections}
</body></html>
"""


def render(lang: str) -> str:
    from qgis.core import QgsApplication
    from qgis.PyQt.QtCore import QCoreApplication

    provider = QgsApplication.processingRegistry().providerById("diffunmix")
    algs = sorted((a for a in provider.algorithms() if not a.name().startswith("diffunmix_")),
                  key=lambda a: (a.group(), a.displayName()))
    nav = " ".join(f'<a href="#{a.name()}">{html.escape(a.displayName())}</a>' for a in algs)
    sections = "\n".join(f'<h2 id="{a.name()}">{html.escape(a.displayName())} <code>diffunmix:{a.name()}</code></h2>'
                         f"<p><i>{html.escape(a.group())}</i></p>{a.shortHelpString()}" for a in algs)
    intro = QCoreApplication.translate(
        "DiffUnmixHelp", "Hyperspectral unmixing in QGIS: endmember spectra and abundance maps. Every algorithm "
        "is in the Processing Toolbox under DiffUnmix and runs in batch mode, in models and with qgis_process. "
        "The full engine needs PyTorch: DiffUnmix ▸ Install Dependencies… installs it for QGIS's Python.")
    return PAGE.format(lang=lang, title="DiffUnmix", intro=html.escape(intro), nav=nav, sections=sections)


def main() -> None:
    from qgis.core import QgsApplication
    from qgis.PyQt.QtCore import QCoreApplication, QTranslator

    app = QgsApplication([], False)
    app.initQgis()
    parent = tempfile.mkdtemp(prefix="diffunmix-help-")
    link = os.path.join(parent, "diffunmix")
    os.symlink(ROOT, link)
    sys.path.insert(0, parent)
    try:
        import diffunmix

        plugin = diffunmix.classFactory(None)
        plugin.initProcessing()
        os.makedirs(HELP_DIR, exist_ok=True)
        pages = {"diffunmix.html": ("en", None)}
        for name in sorted(os.listdir(os.path.join(ROOT, "i18n"))):
            if name.endswith(".qm"):
                code = name[len("diffunmix_"):-3]
                pages[f"diffunmix_{code}.html"] = (code, os.path.join(ROOT, "i18n", name))
        for page, (lang, qm) in pages.items():
            translator = QTranslator()
            if qm:
                translator.load(qm)
                QCoreApplication.installTranslator(translator)
            plugin.provider.refreshAlgorithms()  # labels are translated when the algorithms are made
            with open(os.path.join(HELP_DIR, page), "w", encoding="utf-8") as fh:
                fh.write(render(lang))
            if qm:
                QCoreApplication.removeTranslator(translator)
            print(os.path.join(HELP_DIR, page))
        plugin.unload()
    finally:  # remove the link only, never what it points to
        os.unlink(link)
        os.rmdir(parent)


if __name__ == "__main__":
    main()
