"""Reference scenes distributed as MATLAB files (Samson, MUUFL Gulfport), converted to GeoTIFF.

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


MUUFL_NAMES = ["roof", "grass", "tree", "shadow", "asphalt"]


def load_muufl(data_dir: str):
    """Load the MUUFL Gulfport region (CASI, 90×90×64) with its weak continuous reference.

    The file holds no wavelengths: the 64 bands are taken as evenly spread
    over the sensor's nominal 375–1050 nm (``../shared/data/README.md``).

    Args:
        data_dir: the shared ``data`` folder (holding ``muufl_gulfport/``).

    Returns:
        (Y (64, 90, 90) float32 in [0, 1], A (5, 90, 90) float32 summing to one,
        E (5, 64) float64 reference endmembers, wavelengths_nm (64,)).
    """
    from scipy.io import loadmat

    path = os.path.join(data_dir, "muufl_gulfport", "muffle_dataset_130_90.mat")
    try:
        d = loadmat(path)
        Y, A, M = d["Y"], d["label"], d["M"]
    except (OSError, KeyError) as exc:
        raise UnmixError(f"cannot read the MUUFL Gulfport scene {path}: {exc}") from exc
    wl = np.linspace(375.0, 1050.0, Y.shape[2])
    return (Y.transpose(2, 0, 1).astype(np.float32), A.transpose(2, 0, 1).astype(np.float32),
            M.T.astype(np.float64), wl)


def samson_to_geotiff(data_dir: str, out_dir: str) -> dict:
    """Write Samson as ``scene.tif`` + ``truth_abundances.tif`` + ``truth_endmembers.csv``.

    The scene gets a nominal UTM georeferencing (1 m pixels) so georeferencing
    round trips can be checked; wavelengths go into the band metadata.
    """
    return scene_to_geotiff(*load_samson(data_dir), SAMSON_NAMES, out_dir)


def muufl_to_geotiff(data_dir: str, out_dir: str) -> dict:
    """:func:`samson_to_geotiff` for MUUFL Gulfport (:func:`load_muufl`)."""
    return scene_to_geotiff(*load_muufl(data_dir), MUUFL_NAMES, out_dir)


def scene_to_geotiff(Y, A, E, wl, names, out_dir: str) -> dict:
    """Y (B, H, W), A (P, H, W), E (P, B), wavelengths (B,) or None → the three files of
    :func:`samson_to_geotiff` in ``out_dir``; returns their paths."""
    from core.io.library import write_csv
    from core.io.raster import write_raster

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
    write_raster(paths["abundances"], A, like=like, band_names=names)
    write_csv(paths["endmembers"], E, names, wavelengths_nm=wl)
    return paths
