"""Reference scenes distributed as MATLAB files (Samson), converted to GeoTIFF.

Used by the accuracy benchmark and one CLI test (run from the repository root); the plugin never
depends on them.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np

from core.errors import UnmixError

SAMSON_NAMES = ["soil", "tree", "water"]


def load_samson(data_dir: str):
    """Load Zhu's Samson scene.

    Args:
        data_dir: the shared ``data`` folder (holding ``samson/`` and ``wavelengths/``).

    Returns:
        (Y (156, 95, 95) float32, A (3, 95, 95) float32, E (3, 156) float64
        max-normalised reference endmembers, wavelengths_nm (156,)).
    """
    from scipy.io import loadmat

    sdir = os.path.join(data_dir, "samson")
    try:
        V = loadmat(os.path.join(sdir, "samson_1.mat"))["V"]
        ref = loadmat(os.path.join(sdir, "samson_dataset.mat"))
    except (OSError, KeyError) as exc:
        raise UnmixError(f"cannot read the Samson scene in {sdir}: {exc}") from exc
    Y = V.T.reshape(95, 95, 156, order="F").transpose(2, 0, 1).astype(np.float32)
    A = ref["A"].T.reshape(95, 95, 3, order="F").transpose(2, 0, 1).astype(np.float32)
    E = ref["M"].T.astype(np.float64)
    wl_path = os.path.join(data_dir, "wavelengths", "Wavelengths.mat")
    wl = loadmat(wl_path)["lambda_Samson"].ravel().astype(float) if os.path.exists(wl_path) else None
    return Y, A, E, wl


def samson_to_geotiff(data_dir: str, out_dir: str) -> dict:
    """Write Samson as ``scene.tif`` + ``truth_abundances.tif`` + ``truth_endmembers.csv``.

    The scene gets a nominal UTM georeferencing (1 m pixels) so georeferencing
    round trips can be checked; wavelengths go into the band metadata.
    """
    from core.io.library import write_csv
    from core.io.raster import write_raster

    Y, A, E, wl = load_samson(data_dir)
    os.makedirs(out_dir, exist_ok=True)
    gt = (500000.0, 1.0, 0.0, 4500000.0, 0.0, -1.0)
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32617)
    like = SimpleNamespace(geotransform=gt, projection=srs.ExportToWkt())
    paths = {"scene": os.path.join(out_dir, "scene.tif"),
             "abundances": os.path.join(out_dir, "truth_abundances.tif"),
             "endmembers": os.path.join(out_dir, "truth_endmembers.csv")}
    write_raster(paths["scene"], Y, like=like, wavelengths_nm=wl,
                 band_names=[f"{w:.1f} nm" for w in wl] if wl is not None else None)
    write_raster(paths["abundances"], A, like=like, band_names=SAMSON_NAMES)
    write_csv(paths["endmembers"], E, SAMSON_NAMES, wavelengths_nm=wl)
    return paths
