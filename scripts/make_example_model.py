"""Build the example Processing model with QGIS's own API and save it with toFile.

synthesize → estimatecount → unmix (VCA + FCLS) → evaluate: a synthetic scene
with known truth, its number of endmembers estimated (HySime) and passed to
``unmix``, and the result scored against the truth. Written to
``resources/models/diffunmix_example.model3``; open it in the graphical modeler
(Processing Toolbox ▸ Models ▸ Open Existing Model) or run it headless:

    qgis_process.bin run resources/models/diffunmix_example.model3 -- HEIGHT=48 WIDTH=48 \
        "unmix:Abundances=/tmp/abundances.tif" "evaluate:Evaluation report=/tmp/scores.json"

Usage (repo root): QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_example_model.py [--out PATH]
"""

import argparse
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_PATH = os.path.join(ROOT, "resources", "models", "diffunmix_example.model3")


def _load_plugin():
    """Register the DiffUnmix provider (the plugin imported as the ``diffunmix`` package)."""
    parent = tempfile.mkdtemp(prefix="diffunmix-model-")
    link = os.path.join(parent, "diffunmix")
    os.symlink(ROOT, link)
    sys.path.insert(0, parent)
    import diffunmix

    plugin = diffunmix.classFactory(None)
    plugin.initProcessing()
    return plugin, link


def build_model():
    """The example model (a ``QgsProcessingModelAlgorithm``)."""
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource as Source,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterNumber,
    )
    from qgis.PyQt.QtCore import QPointF

    # the modeler's boxes show about 20 characters of a step's title: keep the titles short
    model = QgsProcessingModelAlgorithm("diffunmix_example", "Examples", "examples")
    model.setHelpContent({
        "ALG_DESC": "Example DiffUnmix workflow: a synthetic scene with known truth → estimate the number of "
                    "endmembers (HySime) → unmix (VCA + FCLS) with that number → score the result "
                    "(aRMSE, SAD, reconstruction RMSE/PSNR) against the truth. The scene needs more pixels than the "
                    "bundled library has bands (224): at least 16 × 16.",
        "ALG_CREATOR": "DiffUnmix developers",
    })
    integer = QgsProcessingParameterNumber.Integer
    for i, (name, label, default, lo, hi) in enumerate((
            ("HEIGHT", "Scene height (pixels)", 48, 16, 2048),
            ("WIDTH", "Scene width (pixels)", 48, 16, 2048),
            ("TRUE_ENDMEMBERS", "Number of endmembers in the scene", 3, 2, 12),
            ("SEED", "Random seed", 0, 0, None))):
        param = QgsProcessingParameterNumber(name, label, type=integer, defaultValue=default, minValue=lo)
        if hi is not None:
            param.setMaximum(hi)
        component = QgsProcessingModelParameter(name)
        component.setPosition(QPointF(120 + 200 * i, 60))
        model.addModelParameter(param, component)

    def child(alg_id, child_id, description, x, y, sources, outputs=None):
        c = QgsProcessingModelChildAlgorithm(alg_id)
        c.setChildId(child_id)
        c.setDescription(description)
        c.setPosition(QPointF(x, y))
        for name, src in sources.items():
            c.addParameterSources(name, [src])
        model_outputs = {}
        for out_name, (child_output, desc) in (outputs or {}).items():
            out = QgsProcessingModelOutput(out_name, desc)
            out.setChildId(child_id)
            out.setChildOutputName(child_output)
            out.setPosition(QPointF(x + 220, y + 30 + 40 * len(model_outputs)))
            model_outputs[out_name] = out
        c.setModelOutputs(model_outputs)
        model.addChildAlgorithm(c)
        return c

    child("diffunmix:synthesize", "synthesize", "Synthesize scene", 220, 180, {
        "HEIGHT": Source.fromModelParameter("HEIGHT"),
        "WIDTH": Source.fromModelParameter("WIDTH"),
        "ENDMEMBERS": Source.fromModelParameter("TRUE_ENDMEMBERS"),
        "FAMILY": Source.fromStaticValue(0),
        "PURITY": Source.fromStaticValue(0.8),
        "SNR": Source.fromStaticValue(40.0),
        "SEED": Source.fromModelParameter("SEED"),
    })
    child("diffunmix:estimatecount", "estimatecount", "Count endmembers", 220, 300, {
        "INPUT": Source.fromChildOutput("synthesize", "OUTPUT"),
        "SEED": Source.fromModelParameter("SEED"),
    })
    child("diffunmix:unmix", "unmix", "Unmix (VCA + FCLS)", 220, 420, {
        "INPUT": Source.fromChildOutput("synthesize", "OUTPUT"),
        "ENDMEMBERS": Source.fromChildOutput("estimatecount", "ENDMEMBER_COUNT"),
        "METHOD": Source.fromStaticValue(1),
        "QUALITY": Source.fromStaticValue(1),
        "DEVICE": Source.fromStaticValue(0),
        "SEED": Source.fromModelParameter("SEED"),
    }, outputs={"Abundances": ("OUTPUT", "Abundances"),
                "Endmember spectra": ("OUTPUT_ENDMEMBERS", "Endmember spectra")})
    child("diffunmix:evaluate", "evaluate", "Evaluate result", 220, 560, {
        "ABUNDANCES": Source.fromChildOutput("unmix", "OUTPUT"),
        "REFERENCE_ABUNDANCES": Source.fromChildOutput("synthesize", "OUTPUT_ABUNDANCES"),
        "ENDMEMBERS_CSV": Source.fromChildOutput("unmix", "OUTPUT_ENDMEMBERS"),
        "REFERENCE_ENDMEMBERS_CSV": Source.fromChildOutput("synthesize", "OUTPUT_ENDMEMBERS"),
        "INPUT": Source.fromChildOutput("synthesize", "OUTPUT"),
    }, outputs={"Evaluation report": ("OUTPUT", "Evaluation report")})
    model.updateDestinationParameters()
    return model


def main() -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=MODEL_PATH)
    args = ap.parse_args()

    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    plugin, link = _load_plugin()
    try:
        model = build_model()
        for child_id in model.childAlgorithms():
            ok, errors = model.validateChildAlgorithm(child_id)
            if not ok:
                raise SystemExit(f"{child_id}: {errors}")
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        if not model.toFile(args.out):
            raise SystemExit(f"could not write {args.out}")
        print(args.out, [p.name() for p in model.parameterDefinitions()])
        plugin.unload()
    finally:  # remove the link only, never what it points to
        os.unlink(link)
        os.rmdir(os.path.dirname(link))
    return args.out


if __name__ == "__main__":
    main()
