"""Synthetic hyperspectral scenes: linear mixtures of library spectra.

``Y (B, H, W) = illumination (H, W) * E^T (B, P) A (P, H, W) + noise``
(optionally with within-material spectral variability, each pixel mixing its
own perturbed copies of the P spectra: ``SceneConfig.variability``), with
spatially structured abundances ``A`` on the simplex (non-negative, summing to
one per pixel) from three families:

* ``grf`` -- Gaussian random fields (FFT-filtered white noise, one random
  correlation length per endmember) through a softmax;
* ``legendre`` -- random low-order 2D Legendre polynomials through a softmax;
* ``mosaic`` -- Voronoi patches, each with a dominant endmember, blurred and
  mixed with a smooth background.

``purity`` in [0, 1] sets how many pixels are near-pure (softmax temperature,
blur width, background weight). Noise is added at a target SNR
(10 log10(mean signal power / noise power)), white or band-correlated.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import SimpleNamespace
from typing import Optional, Sequence, Union

import numpy as np
from numpy.polynomial import legendre
from scipy import ndimage

from ..errors import UnmixError
from ..io.library import SpectralLibrary, bundled_library_path, read_library, resample, write_csv
from ..options import FAMILIES, NOISE_KINDS

RngLike = Union[np.random.Generator, int]


def _rng(rng: RngLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(int(rng))


# -------------------------------------------------------- endmember choice
def select_endmembers(lib: SpectralLibrary, p: int, min_angle_deg: float = 10.0,
                      seed: int = 0, max_tries: int = 200) -> tuple:
    """Draw ``p`` library spectra whose pairwise spectral angles all exceed a minimum.

    Greedy: walk the library in a random order, keep a spectrum if its angle
    to every kept one is > ``min_angle_deg``; retry with new orders.

    Args:
        lib: library with spectra (K, B).
        p: number of endmembers P.
        min_angle_deg: minimum pairwise spectral angle in degrees.
        seed: random seed.
        max_tries: random orders tried before giving up.

    Returns:
        (indices (P,) int into the library, E (P, B) float64).

    Raises:
        UnmixError: p < 1, p > K, or no such set found.
    """
    k = lib.n_spectra
    if p < 1:
        raise UnmixError(f"number of endmembers must be >= 1, got {p}")
    if p > k:
        raise UnmixError(f"cannot draw {p} endmembers from a library of {k} spectra")
    s = np.asarray(lib.spectra, dtype=np.float64)
    norms = np.linalg.norm(s, axis=1)
    valid = np.flatnonzero(norms > 0)
    u = s / np.where(norms > 0, norms, 1.0)[:, None]
    cos_max = np.cos(np.radians(min_angle_deg))
    rng = np.random.default_rng(seed)
    best: list = []
    for _ in range(max_tries):
        chosen: list = []
        for i in rng.permutation(valid):
            if not chosen or np.all(u[chosen] @ u[i] < cos_max):
                chosen.append(int(i))
                if len(chosen) == p:
                    idx = np.array(chosen, dtype=int)
                    return idx, s[idx].copy()
        if len(chosen) > len(best):
            best = chosen
    raise UnmixError(f"cannot find {p} spectra with pairwise angles > {min_angle_deg:g} deg "
                     f"in the library (best found: {len(best)}); lower the minimum angle or P")


# ------------------------------------------------------ abundance fields
def _temperature(purity: float) -> float:
    # log-linear from 2.0 (well mixed) at purity 0 to 0.05 (nearly pure) at 1
    return float(10.0 ** ((1.0 - purity) * np.log10(2.0) + purity * np.log10(0.05)))


def _softmax(z: np.ndarray, temperature: float) -> np.ndarray:
    z = z / temperature
    z = z - z.max(axis=0, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=0, keepdims=True)


def _standardise(f: np.ndarray) -> np.ndarray:
    f = f - f.mean()
    sd = f.std()
    return f / sd if sd > 0 else f


def gaussian_random_field(height: int, width: int, corr_len: float,
                          rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance periodic Gaussian random field (H, W).

    White noise filtered in the Fourier domain by a Gaussian of spatial
    standard deviation ``corr_len`` pixels.
    """
    noise = rng.standard_normal((height, width))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    filt = np.exp(-2.0 * (np.pi * corr_len) ** 2 * (fx ** 2 + fy ** 2))
    return _standardise(np.real(np.fft.ifft2(np.fft.fft2(noise) * filt)))


def _grf_fields(p: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    size = min(h, w)
    lens = rng.uniform(0.04, 0.25, size=p) * size
    return np.stack([gaussian_random_field(h, w, max(ln, 1.0), rng) for ln in lens])


def _legendre_fields(p: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    y = np.linspace(-1.0, 1.0, h)
    x = np.linspace(-1.0, 1.0, w)
    out = np.empty((p, h, w))
    for k in range(p):
        deg = int(rng.integers(2, 5))
        i, j = np.meshgrid(np.arange(deg + 1), np.arange(deg + 1), indexing="ij")
        c = rng.standard_normal((deg + 1, deg + 1)) / (1.0 + i + j)
        c[i + j > deg] = 0.0  # total degree <= deg
        c[0, 0] = 0.0
        out[k] = _standardise(legendre.leggrid2d(y, x, c))
    return out


def _mosaic(p: int, h: int, w: int, rng: np.random.Generator, purity: float) -> np.ndarray:
    n_cells = int(rng.integers(2 * p, 6 * p + 1))
    seeds = rng.uniform(0.0, 1.0, size=(n_cells, 2)) * [h, w]
    labels_em = np.concatenate([rng.permutation(p), rng.integers(0, p, size=max(n_cells - p, 0))])
    background = _softmax(_grf_fields(p, h, w, rng), 1.0)
    yy, xx = np.mgrid[0:h, 0:w]
    cell = np.empty((h, w), dtype=int)
    best = np.full((h, w), np.inf)
    for c, (sy, sx) in enumerate(seeds):
        d = (yy - sy) ** 2 + (xx - sx) ** 2
        closer = d < best
        cell[closer] = c
        best[closer] = d[closer]
    dominant = labels_em[cell]
    onehot = (np.arange(p)[:, None, None] == dominant[None]).astype(np.float64)
    sigma = (1.0 - purity) * 0.06 * min(h, w) + 0.5
    blurred = np.stack([ndimage.gaussian_filter(o, sigma, mode="reflect") for o in onehot])
    weight = 0.4 + 0.6 * purity
    return weight * blurred + (1.0 - weight) * background


def cap_abundances(a: np.ndarray, max_abundance: float) -> np.ndarray:
    """Cap abundances at ``max_abundance``, giving the excess to the others.

    The excess of each pixel is shared among the endmembers below the cap in
    proportion to their room (cap - a); one pass suffices when cap >= 1/P.

    Args:
        a: (P, ...) abundances on the simplex.
        max_abundance: cap in [1/P, 1].

    Returns:
        (P, ...) abundances on the simplex, all <= max_abundance.
    """
    p = a.shape[0]
    if not (1.0 / p - 1e-12 <= max_abundance <= 1.0):
        raise UnmixError(f"max_abundance must be in [1/P, 1] = [{1.0 / p:.3f}, 1], got {max_abundance}")
    a = np.asarray(a, dtype=np.float64)
    over = a > max_abundance
    excess = np.where(over, a - max_abundance, 0.0).sum(axis=0)
    room = np.where(over, 0.0, max_abundance - a)
    total = room.sum(axis=0)
    share = np.divide(room, total, out=np.zeros_like(room), where=total > 0)
    return np.where(over, max_abundance, a + share * excess)


def abundance_field(p: int, height: int, width: int, family: str = "grf",
                    rng: RngLike = 0, purity: float = 0.5,
                    max_abundance: Optional[float] = None) -> np.ndarray:
    """Spatially structured abundance maps on the simplex.

    Args:
        p: number of endmembers P.
        height, width: map size H, W in pixels.
        family: 'grf', 'legendre' or 'mosaic'.
        rng: numpy Generator or integer seed. The random draws do not depend
            on ``purity``, so one seed gives the same layout at any purity.
        purity: 0 (well mixed) .. 1 (most pixels near-pure).
        max_abundance: optional cap (e.g. 0.8 for scenes without pure pixels).

    Returns:
        A (P, H, W) float32, >= 0, summing to 1 over P (to 1e-6).

    Raises:
        UnmixError: unknown family, bad sizes, purity or cap out of range.
    """
    if family not in FAMILIES:
        raise UnmixError(f"unknown abundance family '{family}' (use one of {', '.join(FAMILIES)})")
    if p < 1 or height < 1 or width < 1:
        raise UnmixError(f"P, height and width must be >= 1 (got {p}, {height}, {width})")
    if not 0.0 <= purity <= 1.0:
        raise UnmixError(f"purity must be in [0, 1], got {purity}")
    g = _rng(rng)
    if family == "grf":
        a = _softmax(_grf_fields(p, height, width, g), _temperature(purity))
    elif family == "legendre":
        a = _softmax(_legendre_fields(p, height, width, g), _temperature(purity))
    else:
        a = _mosaic(p, height, width, g, purity)
    a = np.clip(a, 0.0, None)
    a /= a.sum(axis=0, keepdims=True)
    if max_abundance is not None:
        a = cap_abundances(a, float(max_abundance))
    out = a.astype(np.float32)
    assert np.all(out >= 0) and np.allclose(out.sum(axis=0, dtype=np.float64), 1.0, rtol=0, atol=1e-6)
    return out


# ------------------------------------------------------------------ noise
def add_noise(y: np.ndarray, snr_db: Optional[float], kind: str = "white",
              rng: RngLike = 0, axis: int = 0, spectral_sigma: float = 2.0) -> np.ndarray:
    """Add zero-mean Gaussian noise at an exact SNR.

    SNR = 10 log10(mean(y**2) / mean(n**2)); the drawn noise is rescaled so
    the realised SNR equals ``snr_db``.

    Args:
        y: cube (B, H, W) (or any array with the spectral axis ``axis``).
        snr_db: target SNR in dB; None returns a float32 copy without noise.
        kind: 'white' (i.i.d.) or 'correlated' (smoothed along the spectral
            axis with a Gaussian of ``spectral_sigma`` bands).
        rng: numpy Generator or integer seed.
        axis: spectral axis of ``y``.
        spectral_sigma: correlation width in bands for 'correlated'.

    Returns:
        float32 array shaped like ``y``.

    Raises:
        UnmixError: unknown kind or non-finite SNR.
    """
    if kind not in NOISE_KINDS:
        raise UnmixError(f"unknown noise kind '{kind}' (use 'white' or 'correlated')")
    y64 = np.asarray(y, dtype=np.float64)
    if snr_db is None:
        return y64.astype(np.float32)
    if not np.isfinite(snr_db):
        raise UnmixError(f"SNR must be a finite number of dB, got {snr_db}")
    n = _rng(rng).standard_normal(y64.shape)
    if kind == "correlated" and y64.shape[axis] > 1:
        n = ndimage.gaussian_filter1d(n, spectral_sigma, axis=axis, mode="reflect")
    p_signal = float(np.mean(y64 ** 2))
    p_noise = float(np.mean(n ** 2))
    if p_signal == 0 or p_noise == 0:
        return y64.astype(np.float32)
    n *= np.sqrt(p_signal / 10.0 ** (snr_db / 10.0) / p_noise)
    return (y64 + n).astype(np.float32)


# ------------------------------------------------------------------ scenes
@dataclass
class SceneConfig:
    """Settings of one synthetic scene (JSON round trip with to_json/from_json).

    Attributes:
        height, width: scene size in pixels.
        p: number of endmembers.
        family: abundance family ('grf', 'legendre', 'mosaic').
        purity: 0 (mixed) .. 1 (near-pure pixels).
        snr_db: noise level in dB (None = no noise).
        noise: 'white' or 'correlated' (band-correlated).
        illumination: std of a smooth per-pixel multiplicative factor
            ~ N(1, illumination) clipped to [0.5, 1.5]; 0 = none.
        min_angle_deg: minimum pairwise angle between drawn endmembers.
        seed: master seed (endmembers, abundances, illumination, noise,
            variability).
        max_abundance: optional abundance cap (e.g. 0.8: no pure pixels).
        variability: within-material spectral variability: each pixel's
            copy of an endmember is ``e · exp(g)``, ``g`` a smooth spectral
            curve (Legendre degrees 0–3 over the bands) whose coefficients
            are smooth spatial fields, of log-std ``variability`` per band
            (0.05 = ±5 %); the truth endmembers are the unperturbed ``e``.
            0 = none (pixels are exact mixtures of P spectra).
    """

    height: int = 64
    width: int = 64
    p: int = 4
    family: str = "grf"
    purity: float = 0.5
    snr_db: Optional[float] = 30.0
    noise: str = "white"
    illumination: float = 0.0
    min_angle_deg: float = 10.0
    seed: int = 0
    max_abundance: Optional[float] = None
    variability: float = 0.0

    def validate(self) -> "SceneConfig":
        """Raise UnmixError on out-of-range settings; return self."""
        if self.height < 1 or self.width < 1:
            raise UnmixError(f"scene size must be >= 1 pixel (got {self.height} x {self.width})")
        if self.p < 1:
            raise UnmixError(f"number of endmembers must be >= 1, got {self.p}")
        if self.family not in FAMILIES:
            raise UnmixError(f"unknown abundance family '{self.family}' (use one of {', '.join(FAMILIES)})")
        if self.noise not in NOISE_KINDS:
            raise UnmixError(f"unknown noise kind '{self.noise}' (use 'white' or 'correlated')")
        if not 0.0 <= self.purity <= 1.0:
            raise UnmixError(f"purity must be in [0, 1], got {self.purity}")
        if self.illumination < 0:
            raise UnmixError(f"illumination must be >= 0, got {self.illumination}")
        if not 0.0 <= self.variability <= 1.0:
            raise UnmixError(f"variability must be in [0, 1], got {self.variability}")
        if not 0.0 <= self.min_angle_deg < 90.0:
            raise UnmixError(f"minimum angle between endmembers must be in [0, 90) degrees, got {self.min_angle_deg}")
        if self.seed < 0:
            raise UnmixError(f"seed must be ≥ 0, got {self.seed}")
        return self

    def to_json(self) -> str:
        """The config as a JSON object string."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: Union[str, dict]) -> "SceneConfig":
        """Build a config from a JSON string (or dict); unknown keys are an error."""
        try:
            data = json.loads(text) if isinstance(text, str) else dict(text)
        except json.JSONDecodeError as exc:
            raise UnmixError(f"scene config is not valid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise UnmixError("scene config must be a JSON object")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UnmixError(f"unknown scene config keys: {', '.join(unknown)}")
        return cls(**data).validate()


def _child_rngs(seed: int, n: int) -> list:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def illumination_field(height: int, width: int, std: float, rng: RngLike) -> np.ndarray:
    """Smooth multiplicative factor (H, W) ~ N(1, std) clipped to [0.5, 1.5]."""
    g = _rng(rng)
    corr = max(0.1 * min(height, width), 1.0)
    return np.clip(1.0 + std * gaussian_random_field(height, width, corr, g), 0.5, 1.5)


#: Legendre degrees of the spectral shape of within-material variability
VARIABILITY_DEGREES = 4


def variability_factor(bands: int, height: int, width: int, std: float, rng: RngLike) -> np.ndarray:
    """One endmember's per-pixel multiplicative perturbation (B, H, W), ``exp(g)``.

    ``g`` is a sum of Legendre polynomials of degree 0..3 over the bands (so
    brightness, slope and curvature of a material change together) with
    coefficients that are smooth spatial fields; each band's ``g`` has
    standard deviation ``std``.
    """
    g = _rng(rng)
    corr = max(0.1 * min(height, width), 1.0)
    t = np.linspace(-1.0, 1.0, bands)
    basis = np.stack([np.polynomial.legendre.Legendre.basis(k)(t) for k in range(VARIABILITY_DEGREES)])
    basis /= np.sqrt(np.mean(basis ** 2, axis=1, keepdims=True) * VARIABILITY_DEGREES)  # Σ_k mean L_k² = 1
    coef = np.stack([gaussian_random_field(height, width, corr, g) for _ in range(VARIABILITY_DEGREES)])
    return np.exp(std * np.tensordot(basis, coef, axes=(0, 0)))


def make_scene(e: np.ndarray, cfg: SceneConfig) -> tuple:
    """Linear-mixing scene from endmembers ``e`` and a config.

    Args:
        e: E (P, B) endmember spectra; P must equal ``cfg.p``.
        cfg: scene settings.

    Returns:
        (Y (B, H, W) float32, A (P, H, W) float32). Y includes illumination
        and noise; A is the noise-free truth on the simplex.

    Raises:
        UnmixError: bad config or E shape.
    """
    cfg.validate()
    e = np.asarray(e, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] != cfg.p:
        raise UnmixError(f"endmembers must be (P={cfg.p}, B), got shape {e.shape}")
    # the variability stream is the 4th child, so scenes without it are unchanged
    r_abund, r_illum, r_noise, r_var = _child_rngs(cfg.seed, 4)
    a = abundance_field(cfg.p, cfg.height, cfg.width, cfg.family, r_abund, cfg.purity,
                        cfg.max_abundance)
    if cfg.variability > 0:
        y = np.zeros((e.shape[1], cfg.height, cfg.width))
        for j in range(cfg.p):
            f = variability_factor(e.shape[1], cfg.height, cfg.width, cfg.variability, r_var)
            y += e[j][:, None, None] * f * a[j][None].astype(np.float64)
    else:
        y = np.tensordot(e.T, a.astype(np.float64), axes=(1, 0))  # (B, H, W)
    if cfg.illumination > 0:
        y *= illumination_field(cfg.height, cfg.width, cfg.illumination, r_illum)[None]
    return add_noise(y, cfg.snr_db, cfg.noise, r_noise), a


#: Ground sampling distance (m) of synthetic scenes, and their projected CRS: WGS 84 / UTM zone 31N
#: (EPSG:32631), the scene's lower-left corner at the zone's origin (easting 500 000 m on the equator,
#: at sea in the Gulf of Guinea, so it never poses as real land), so GIS software can place, measure,
#: label ("scene [EPSG:32631]") and reproject it without "Unable to compute a transformation".
SCENE_PIXEL_M = 10.0
SCENE_EPSG = 32631
SCENE_ORIGIN_M = (500000.0, 0.0)


def scene_georef(height: int) -> SimpleNamespace:
    """Georeferencing of a synthetic scene ``height`` pixels tall: north up, pixels of
    :data:`SCENE_PIXEL_M` m, the lower-left corner at :data:`SCENE_ORIGIN_M` in EPSG:``SCENE_EPSG``.

    Returns:
        An object with ``geotransform`` (6 floats) and ``projection`` (WKT), as
        ``write_raster(like=...)`` takes.
    """
    from osgeo import osr  # GDAL: only when writing

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(SCENE_EPSG)
    gsd, (x0, y0) = SCENE_PIXEL_M, SCENE_ORIGIN_M
    return SimpleNamespace(geotransform=(x0, gsd, 0.0, y0 + height * gsd, 0.0, -gsd), projection=srs.ExportToWkt())


def write_scene(out_dir: Union[str, Path], y: np.ndarray, a: np.ndarray, e: np.ndarray,
                names: Sequence[str], wavelengths_nm: Optional[Sequence[float]] = None,
                fwhm_nm: Optional[Sequence[float]] = None,
                config: Optional[Union[SceneConfig, dict]] = None,
                metadata: Optional[dict] = None) -> dict:
    """Write a scene and its truth, georeferenced by :func:`scene_georef`.

    Files: ``scene.tif`` (B Float32 bands, wavelength metadata),
    ``truth_abundances.tif`` (P bands named after the endmembers),
    ``truth_endmembers.csv`` (wavelength_nm or band, one column per
    endmember) and, with a config, ``scene.json`` ({"config": ..., plus
    endmember names and ``metadata``}).

    Args:
        out_dir: output folder (created).
        y: Y (B, H, W). a: A (P, H, W). e: E (P, B).
        names: P endmember names.
        wavelengths_nm, fwhm_nm: (B,) band centres / widths in nm, or None.
        config: SceneConfig (or dict) to record in scene.json.
        metadata: extra JSON-serialisable items for scene.json.

    Returns:
        dict with keys 'scene', 'abundances', 'endmembers' (and 'config').

    Raises:
        UnmixError: shapes disagree or the folder is not writable.
    """
    from ..io.raster import check_output_dir, write_raster  # raster pulls in GDAL

    y = np.asarray(y)
    a = np.asarray(a)
    e = np.asarray(e)
    if y.ndim != 3 or a.ndim != 3 or e.ndim != 2:
        raise UnmixError(f"expected Y (B,H,W), A (P,H,W), E (P,B); got {y.shape}, {a.shape}, {e.shape}")
    if y.shape[1:] != a.shape[1:] or e.shape != (a.shape[0], y.shape[0]) or len(names) != a.shape[0]:
        raise UnmixError(f"inconsistent shapes: Y {y.shape}, A {a.shape}, E {e.shape}, {len(names)} names")
    out = Path(check_output_dir(out_dir))
    wl = None if wavelengths_nm is None else np.asarray(wavelengths_nm, dtype=np.float64)
    fw = None if fwhm_nm is None else np.asarray(fwhm_nm, dtype=np.float64)
    georef = scene_georef(y.shape[1])
    paths = {
        "scene": str(write_raster(out / "scene.tif", y.astype(np.float32), like=georef,
                                  wavelengths_nm=wl, fwhm_nm=fw)),
        "abundances": str(write_raster(out / "truth_abundances.tif", a.astype(np.float32), like=georef,
                                       band_names=[str(n) for n in names])),
        "endmembers": str(write_csv(out / "truth_endmembers.csv", e, names, wl)),
    }
    if config is not None:
        cfg = asdict(config) if isinstance(config, SceneConfig) else dict(config)
        doc = {"config": cfg, "endmember_names": [str(n) for n in names], **(metadata or {})}
        path = out / "scene.json"
        path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
        paths["config"] = str(path)
    return paths


def generate(out_dir: Union[str, Path], cfg: SceneConfig,
             library_path: Optional[Union[str, Path]] = None,
             wavelengths_nm: Optional[Sequence[float]] = None,
             fwhm_nm: Optional[Sequence[float]] = None) -> dict:
    """Read a library, draw endmembers, make a scene and write it.

    Args:
        out_dir: output folder.
        cfg: scene settings.
        library_path: ENVI or CSV library; default the bundled USGS library.
        wavelengths_nm, fwhm_nm: optional sensor bands to resample the
            library to first (nm).

    Returns:
        dict: 'paths' (dict of scene / abundances / endmembers / config
        paths, as from :func:`write_scene`), 'Y' (B, H, W) float32,
        'A' (P, H, W) float32, 'E' (P, B) float64, 'names' (P endmember
        names), 'indices' (P,) library indices, 'wavelengths_nm' (B,) or None.
    """
    cfg.validate()
    lib_path = Path(library_path) if library_path is not None else bundled_library_path()
    lib = read_library(lib_path)
    if wavelengths_nm is not None:
        lib = resample(lib, wavelengths_nm, fwhm_nm)
    idx, e = select_endmembers(lib, cfg.p, cfg.min_angle_deg, cfg.seed)
    names = [lib.names[i] for i in idx]
    y, a = make_scene(e, cfg)
    meta = {"library": str(lib_path), "library_indices": [int(i) for i in idx]}
    paths = write_scene(out_dir, y, a, e, names, lib.wavelengths_nm, lib.fwhm_nm,
                        config=cfg, metadata=meta)
    return {"paths": paths, "Y": y, "A": a, "E": e, "names": names, "indices": idx,
            "wavelengths_nm": lib.wavelengths_nm}
