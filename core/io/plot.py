"""Endmember-spectra plot (PNG) without pyplot, so it is safe in worker threads."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .atomic import atomic_write


def plot_endmembers(path: str, E: np.ndarray, names: Sequence[str],
                    wavelengths_nm: Optional[np.ndarray] = None,
                    library: Optional[np.ndarray] = None,
                    library_names: Optional[Sequence[str]] = None,
                    title: str = "DiffUnmix endmembers") -> str:
    """Write a PNG with one line per endmember.

    Args:
        path: output PNG path (written to a temporary name, then renamed).
        E: endmembers (P, B).
        names: P endmember names.
        wavelengths_nm: (B,) wavelengths; band numbers are used when None.
        library: optional matched library spectra (P, B), drawn dashed.
        library_names: names of the matched library spectra.
        title: plot title.

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    E = np.asarray(E, dtype=float)
    x = np.arange(1, E.shape[1] + 1) if wavelengths_nm is None else np.asarray(wavelengths_nm)
    fig = Figure(figsize=(8, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    colors = [f"C{i % 10}" for i in range(E.shape[0])]
    for i, (spec, name) in enumerate(zip(E, names)):
        ax.plot(x, spec, color=colors[i], lw=1.6, label=str(name))
        if library is not None and np.isfinite(library[i]).any():  # NaN: no library match
            lab = library_names[i] if library_names is not None else "library"
            ax.plot(x, library[i], color=colors[i], lw=1.0, ls="--", alpha=0.8,
                    label=f"{lab} (library)")
    ax.set_xlabel("Wavelength (nm)" if wavelengths_nm is not None else "Band")
    ax.set_ylabel("Reflectance")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
