"""Regenerate resources/library/usgs_minerals_vegetation.csv from USGS splib07.

The bundled library is a small, diverse set of USGS splib07 spectra convolved
to the 224 AVIRIS-1995 bands (public domain: Kokaly et al. 2017, USGS Data
Series 1035, doi:10.3133/ds1035): minerals, rocks and soils, water and snow,
man-made materials and vegetation. Candidates are taken in the order listed
below and kept only if their spectral angle to every spectrum already kept
is at least ``MIN_ANGLE_DEG``. Bands are written in increasing wavelength
(AVIRIS-95's overlapping spectrometers make the native order non-monotonic);
the one or two missing values of some spectra are filled by
``core.io.library.read_library`` (linear interpolation along wavelength).

Usage (from the repository root)::

    .venv/bin/python benchmarks/make_bundled_library.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.io.library import bundled_library_path, read_library, write_csv  # noqa: E402

SPLIB = "spectral_libraries/usgs_splib07_aviris95_envi/s07_AV95_envi.sli"
MIN_ANGLE_DEG = 5.0
MAX_SPECTRA = 32

# USGS names (whitespace collapsed), in order of preference.
CANDIDATES = [
    # water and snow
    "Seawater_Open_Ocean SW2 lwch BECKa AREF",
    "Seawater_Coast_Chl SW1 BECKa AREF",
    "Melting_snow mSnw01a ASDFRa AREF",
    # vegetation
    "Lawn_Grass GDS91 green BECKa AREF",
    "Grass_Golden_Dry GDS480 ASDFRa AREF",
    "Cheatgrass ANP92-11A BECKa AREF",
    "Sagebrush IH91-1B BECKa AREF",
    "Blue_Spruce DW92-5 needles BECKa AREF",
    "Aspen_Leaf-A DW92-2 BECKa AREF",
    "Oak Oak-Leaf-1 fresh ASDFRa AREF",
    # man-made
    "Asphalt GDS376 Blck_Road old ASDFRa AREF",
    "Concrete GDS375 Lt Gry Road ASDFRa AREF",
    "Brick GDS349 Paving Red ASDFRa AREF",
    "Plastic_PVC GDS338 White ASDFRa AREF",
    "GalvanizedSheetMetal GDS334 ASDFRa AREF",
    "Wood_Beam GDS363 Nw Pine 2X4 ASDFRa AREF",
    "Cardboard GDS371 Brn Corgted ASDFRa AREF",
    # rocks and soils
    "Quartz GDS74 Sand Ottawa BECKc AREF",
    "Basalt_weathered BR93-43 BECKb AREF",
    "Desert_Varnish GDS141 BECKa AREF",
    "Limestone CU02-11A ASDFRa AREF",
    "Sand DWO-3-DEL2ar1 no oil ASDFRa AREF",
    "Stonewall_Playa_Dry_Mud 2001 ASDFRa AREF",
    # minerals
    "Kaolinite CM9 BECKb AREF",
    "Alunite GDS84 Na03 BECKa AREF",
    "Calcite CO2004 BECKb AREF",
    "Dolomite COD2005 BECKb AREF",
    "Montmorillonite SWy-1 BECKb AREF",
    "Muscovite GDS107 BECKa AREF",
    "Hematite GDS27 BECKa AREF",
    "Goethite WS222 Medium Gr. BECKa AREF",
    "Jarosite GDS24 Na BECKb AREF",
    "Gypsum SU2202 BECKa AREF",
    "Chlorite SMR-13.e <30um BECKb AREF",
    "Epidote GDS26.b <75um BECKb AREF",
    "Olivine GDS70.d Fo89 <60um BECKb AREF",
    "Buddingtonite GDS85 D-206 BECKb AREF",
    "Pyrophyllite SU1421 BECKb AREF",
    "Talc TL2702 BECKa AREF",
    "Antigorite NMNH17958 BECKb AREF",
]

_SUFFIX = re.compile(r"\s+(BECK|ASD|NIC|AVIRIS)\w*\s+\w+$")


def short_name(usgs_name: str) -> str:
    """USGS name without the trailing instrument / processing codes."""
    return _SUFFIX.sub("", usgs_name).strip()


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Spectral angle between two spectra, in degrees."""
    c = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(bundled_library_path()))
    args = ap.parse_args(argv)
    lib = read_library(Path(args.data) / SPLIB)
    index = {n: i for i, n in reversed(list(enumerate(lib.names)))}
    kept: list = []
    for cand in CANDIDATES:
        if cand not in index:
            raise SystemExit(f"not in splib07 (or dropped for missing values): {cand}")
        s = lib.spectra[index[cand]]
        worst = min((angle_deg(s, lib.spectra[k]) for k in kept), default=180.0)
        if worst < MIN_ANGLE_DEG:
            print(f"skip {cand} (angle {worst:.1f} deg)")
            continue
        kept.append(index[cand])
        if len(kept) == MAX_SPECTRA:
            break
    order = np.argsort(lib.wavelengths_nm, kind="stable")
    spectra = lib.spectra[kept][:, order]
    assert np.all(np.isfinite(spectra))
    names = [short_name(lib.names[k]) for k in kept]
    assert len(set(names)) == len(names), "short names collide"
    write_csv(args.out, spectra, names, lib.wavelengths_nm[order])
    angles = [angle_deg(spectra[i], spectra[j]) for i in range(len(kept)) for j in range(i)]
    print(f"wrote {args.out}: {len(kept)} spectra x {spectra.shape[1]} bands, "
          f"min pairwise angle {min(angles):.1f} deg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
