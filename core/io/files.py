"""Every file an input really reads, for the "no output replaces an input" check.

A raster named on the command line can read other files: a VRT its sources (and
their sources), an ENVI raster its header, a GeoTIFF its ``.aux.xml`` or ``.msk``.
:func:`input_files` lists them all through GDAL's file list (``GetFileList()``, rasterio's ``files``), recursively,
each resolved through symlinks, so an output can be compared with what is read
and not only with the path the user typed.
"""

from __future__ import annotations

import os
from typing import Iterable, List, Optional, Set

from .raster import backend

#: at most this many files are followed (a VRT mosaic of thousands of tiles stops here)
MAX_FILES = 20000


def _is_local(path: str) -> bool:
    return bool(path) and not path.startswith("/vsi")


def dataset_files(path: str, _seen: Optional[Set[str]] = None) -> List[str]:
    """``path`` and every file GDAL reads for it (VRT sources recursively), resolved through symlinks.

    A path GDAL does not open as a raster (a CSV library, a model file) is just itself.

    Returns:
        Real paths, ``path``'s first, without repeats.
    """
    seen = set() if _seen is None else _seen
    out: List[str] = []

    def add(name: str) -> bool:
        real = os.path.realpath(name)
        if real in seen:
            return False
        seen.add(real)
        out.append(real)
        return True

    if not _is_local(os.fspath(path)):
        return out
    add(path)
    if not os.path.isfile(path) or len(seen) > MAX_FILES:
        return out
    names = backend().file_list(os.fspath(path))
    for name in names or []:
        if not _is_local(name) or len(seen) > MAX_FILES:
            continue
        if name.lower().endswith(".vrt") and os.path.realpath(name) not in seen:
            out.extend(dataset_files(name, seen))  # a source that is itself a VRT reads further files
        else:
            add(name)
    return out


def input_files(paths: Iterable[Optional[str]]) -> List[str]:
    """:func:`dataset_files` of every input (None entries skipped), without repeats."""
    seen: Set[str] = set()
    out: List[str] = []
    for p in paths:
        if p:
            out.extend(dataset_files(os.fspath(p), seen))
    return out
