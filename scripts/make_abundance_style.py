"""Write resources/styles/abundance.qml with QGIS's own API (so it is a valid style).

The style is the one the plugin applies to each abundance layer: band 1 as a
continuous Viridis pseudocolour ramp over [0, 1]. For manual use: Layer
Properties ▸ Symbology ▸ Style ▸ Load Style (then pick the band).

Usage (repo root): QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_abundance_style.py
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> str:
    from osgeo import gdal
    from qgis.core import QgsApplication, QgsRasterLayer

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, ROOT)
    from plugin.styling import ABUNDANCE_QML, pseudocolor_renderer  # needs no engine import

    ds = gdal.GetDriverByName("GTiff").Create("/vsimem/abundance.tif", 2, 2, 1, gdal.GDT_Float32)
    ds.GetRasterBand(1).SetNoDataValue(-9999.0)
    ds.SetGeoTransform((0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    ds.GetRasterBand(1).Fill(0.5)
    ds = None
    layer = QgsRasterLayer("/vsimem/abundance.tif", "abundance")
    layer.setRenderer(pseudocolor_renderer(layer.dataProvider(), 1))
    os.makedirs(os.path.dirname(ABUNDANCE_QML), exist_ok=True)
    message, ok = layer.saveNamedStyle(ABUNDANCE_QML)
    if not ok:
        raise SystemExit(f"could not write {ABUNDANCE_QML}: {message}")
    print(ABUNDANCE_QML)
    return ABUNDANCE_QML


if __name__ == "__main__":
    main()
