"""Noise-robust endmembers for the deep engine (needs torch).

Plain VCA picks the most extreme *pixels*; at low SNR those are the noisiest,
and when no pixel is pure they lie inside the true simplex. The engine starts
from better endmembers:

1. **Spatial denoising** (:func:`bilateral`): a noise-adaptive bilateral filter
   averages each pixel with the neighbours whose spectra differ from it by
   no more than the noise explains (the squared distance of two noisy copies
   of one spectrum is ``2 Σσ²`` on average), so edges between materials stay
   sharp while white noise drops by up to 3× (3×3) or 5× (5×5). The
   endmember search uses the 5×5 filter (a tighter point cloud); the
   abundance prior the 3×3 one (less blur of fine detail at high SNR).
2. **VCA** on the denoised pixels, best of several random restarts by simplex
   volume (:func:`vca_max_volume`; one VCA run can lock onto a poor pixel).
3. **Minimum-volume simplex** (:func:`min_volume`), in the spirit of SISAL
   (Bioucas-Dias 2009): in the (P−1)-dim affine signal subspace, minimise
   ``log|det M| + λ · mean Σⱼ max(0, −aⱼ − k·sdⱼ)`` over the endmember
   positions M, where ``a = M⁻¹[x; 1]`` are the pixels' barycentric
   coordinates and ``sdⱼ`` their noise standard deviation: the smallest
   simplex that holds the data up to noise. This recovers endmembers that no
   pixel shows pure.
4. **Within-material variability test** (:func:`model_excess`): pixels that
   are mixtures of P fixed spectra lie, up to noise, in a P-dim subspace. Real
   materials vary (leaf chemistry, moisture, grain size), which puts energy
   outside it. When that energy exceeds the noise's by more than
   :data:`VARIABILITY_EXCESS`, extreme pixels are variability outliers, not
   pure endmembers, and the minimum-volume simplex swells to hold them; the
   endmembers are then *representative* spectra instead
   (:func:`representative_endmembers`): the mean of the pixels closest in
   angle to each VCA endmember, the core of each material (restarts compared
   by the volume of these cores). Two cores that share pixels stand for one
   material (VCA spent two endmembers on a bright, variable one): the later is
   moved to the material the others miss (:func:`separate_cores`).
5. **Scale-variability test** (:func:`scale_variability`, :func:`scale_share`):
   with the right endmembers and no illumination changes, the sum of the
   non-negative LS abundances varies over the scene only as much as noise
   makes it vary. When it varies far more (topography, shade, real scenes such
   as Samson) *and* one scale per pixel explains most of what the linear model
   leaves unexplained, the minimum-volume simplex is the wrong model (it
   expands to hold the scaled pixels), so the VCA endmembers are kept and
   abundances are estimated by the *scaled* model: NNLS, then normalised to
   sum to one. Within-material variability also spreads the sums, but a
   single scale explains little of its misfit, and there the scaled model's
   free sum turns variability into abundance error: the linear model stays.

6. **Never worse than the classical start** (:func:`start_check`): the
   minimum-volume simplex replaces plain VCA's endmembers only if it explains
   the pixels it was not fitted on as well (reconstruction residual within
   :data:`START_FIT_MARGIN`).

The constants were chosen on benchmarks/accuracy.py; the history of those
choices is in docs/EXPERIMENTS.md.
"""

from __future__ import annotations

import numpy as np
import torch

#: mixing models: the linear model (FCLS) or the scaled one (NNLS normalised to sum one)
LINEAR, SCALED = "linear", "scaled"
#: smallest spread (std) of the abundance sums treated as illumination variability (2 %)
MIN_SCALE_SPREAD = 0.02
#: smallest share of the linear model's misfit (above noise) that a per-pixel scale must explain for the
#: scaled model to be chosen. Scaled scenes: 0.93 (Samson), 0.94 (MUUFL), 0.98 (the illumination scene);
#: within-material variability: 0.41 and 0.68 (the 5 % and 10 % scenes), where the scaled model's free
#: sum turns variability into abundance error (docs/EXPERIMENTS.md)
MIN_SCALE_SHARE = 0.8


def bilateral(y: torch.Tensor, sigma: torch.Tensor, h: float = 0.5, radius: int = 1) -> torch.Tensor:
    """Noise-adaptive bilateral filter of a cube batch.

    Args:
        y: (N, B, H, W).
        sigma: per-band noise std (B,) in the units of ``y``; all zeros → identity.
        h: tolerance (in units of the noise-explained distance) above which a
            neighbour's weight decays.
        radius: neighbourhood radius (1 → 3×3).

    Returns:
        The filtered batch, same shape and dtype.
    """
    s2 = 2.0 * float(torch.sum(sigma.double() ** 2))
    if s2 <= 0.0 or radius <= 0:
        return y
    n, b, hh, ww = y.shape
    yp = torch.nn.functional.pad(y, (radius, radius, radius, radius), mode="replicate")
    num = torch.zeros_like(y)
    den = torch.zeros((n, 1, hh, ww), dtype=y.dtype, device=y.device)
    diff = torch.empty_like(y)  # one scratch cube, reused for every neighbour
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            z = yp[:, :, dy:dy + hh, dx:dx + ww]
            torch.sub(z, y, out=diff)
            d = torch.sum(diff.square_(), dim=1, keepdim=True) / s2
            w = torch.exp(-0.5 * torch.clamp(d - 1.0, min=0.0) / h**2)
            num.addcmul_(w, z)
            den += w
    return num.div_(den)


def bilateral_np(cube: np.ndarray, sigma: np.ndarray, radius: int = 1, h: float = 0.5, rows: int = 64) -> np.ndarray:
    """:func:`bilateral` on one (B, H, W) numpy cube (float64 out), ``rows`` rows at a time.

    Each block of rows is filtered with ``radius`` rows of real neighbours on
    either side, so the result is the same as filtering the whole cube, with
    scratch memory for a block instead of several copies of the cube.
    """
    cube = np.asarray(cube)
    sig = torch.from_numpy(np.asarray(sigma, np.float64))
    hh = cube.shape[1]
    out = np.empty(cube.shape, np.float64)
    for r0 in range(0, hh, max(1, int(rows))):
        r1 = min(hh, r0 + rows)
        a, b = max(0, r0 - radius), min(hh, r1 + radius)
        y = torch.from_numpy(np.ascontiguousarray(cube[:, a:b], np.float64))[None]
        out[:, r0:r1] = bilateral(y, sig, h=h, radius=radius)[0, :, r0 - a:r0 - a + (r1 - r0)].numpy()
    return out


def pixel_scale(rec, y, axis: int):
    """Each pixel's least-squares scale ``argmin_s ‖y − s·rec‖²`` (bands along ``axis``; the scaled
    model's illumination factor), with ``axis`` kept for broadcasting; NumPy arrays or torch tensors."""
    if isinstance(rec, torch.Tensor):
        return (rec * y).sum(axis, keepdim=True) / (rec * rec).sum(axis, keepdim=True).clamp_min(1e-30)
    return np.sum(rec * y, axis=axis, keepdims=True) / np.maximum(np.sum(rec * rec, axis=axis, keepdims=True), 1e-30)


def scaled_abundances(Y: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Scaled-model abundances: NNLS, normalised to sum one (zero rows stay uniform)."""
    from ..classical.fcls import nnls

    C = nnls(Y, E).astype(np.float64)
    s = C.sum(axis=1, keepdims=True)
    out = np.where(s > 1e-12, C / np.where(s > 1e-12, s, 1.0), 1.0 / E.shape[0])
    return out.astype(np.float32)


#: hinge weight of the minimum-volume simplex. Chosen on the synthetic suite
#: (5×5-filtered pixels, k = 1): 300 gave the lowest abundance error on 6 of
#: its 7 linear scenes (100 on the seventh, grf P6 20 dB); 30 and 3000 lost
#: everywhere. Smaller λ shrinks the simplex into the data, larger λ lets it
#: swell to hold noise.
MIN_VOLUME_LAMBDA = 300.0
#: bilateral radius of the endmember search (2 → 5×5)
ENDMEMBER_FILTER_RADIUS = 2


def min_volume(Y: np.ndarray, E0: np.ndarray, sigma: np.ndarray, lam: float = MIN_VOLUME_LAMBDA, k: float = 1.0,
               iters: int = 400, progress=None) -> np.ndarray:
    """Minimum-volume simplex holding the pixels up to noise (see module doc).

    Args:
        Y: pixels (N, B) (a sample of ~10⁴ is plenty).
        E0: starting endmembers (P, B), e.g. VCA's.
        sigma: per-band noise std (B,).
        lam: weight of the hinge (pixels outside the simplex) against the volume.
        k: noise margin, in noise standard deviations of each barycentric coordinate.
        iters: Adam iterations.

    Returns:
        Endmembers (P, B), clipped at zero.
    """
    Y = np.asarray(Y, np.float64)
    P = E0.shape[0]
    mu = Y.mean(axis=0)
    U = np.linalg.eigh(np.cov((Y - mu).T))[1][:, ::-1][:, : P - 1]  # affine signal subspace
    x = torch.from_numpy((Y - mu) @ U)
    z = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    noise_low = torch.from_numpy(U.T @ (np.asarray(sigma, np.float64)[:, None] ** 2 * U))
    V = torch.tensor((np.asarray(E0, np.float64) - mu) @ U, requires_grad=True)  # (P, P−1) vertices
    ones = torch.ones(1, P, dtype=torch.float64)
    opt = torch.optim.Adam([V], lr=0.01 * float(x.std()))
    for _ in range(iters):
        if progress is not None:
            progress.check()
        M = torch.cat([V.T, ones], dim=0)  # columns: vertices lifted by a constant coordinate
        det = torch.linalg.slogdet(M)
        if not torch.isfinite(det[1]):
            break
        Q = torch.linalg.inv(M)
        a = z @ Q.T  # barycentric coordinates (N, P), sum to one by construction
        with torch.no_grad():
            Qx = Q[:, : P - 1]
            sd = torch.sqrt(torch.einsum("ji,ik,jk->j", Qx, noise_low, Qx))
        loss = det[1] + lam * torch.relu(-a - k * sd).sum(dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return np.clip(mu + V.detach().numpy() @ U.T, 0.0, None)


def _principal_subspace(X: np.ndarray, p: int, max_pixels: int = 20000) -> tuple:
    """Mean (B,) and the (B, p−1) leading principal directions of pixels X (N, B)."""
    Xs = X[:: max(1, len(X) // max_pixels)]
    mu = Xs.mean(axis=0)
    return mu, np.linalg.eigh(np.cov((Xs - mu).T))[1][:, ::-1][:, : p - 1]


def simplex_log_volume(E: np.ndarray, X: np.ndarray, subspace: tuple | None = None) -> float:
    """log volume of the simplex of endmembers E (P, B) in the (P−1)-dim principal
    subspace of pixels X (N, B) (or a given ``(mean, directions)``); −inf when degenerate."""
    p = E.shape[0]
    mu, U = subspace if subspace is not None else _principal_subspace(X, p)
    M = np.vstack([((E - mu) @ U).T, np.ones((1, p))])
    sign, logdet = np.linalg.slogdet(M)
    return float(logdet) if sign != 0 else float("-inf")


def vca_max_volume(X: np.ndarray, p: int, seed: int = 0, restarts: int = 8, transform=None) -> np.ndarray:
    """VCA run with ``restarts`` seeds derived from ``seed``; the endmembers
    (clipped at zero, then passed through ``transform`` when given) whose
    simplex has the largest volume."""
    from ..classical.endmembers import vca

    sub = _principal_subspace(X, p)
    best, best_v = None, float("-inf")
    for i in range(restarts):
        E = np.clip(vca(X, p, seed=seed * restarts + i)[0], 0.0, None)
        if transform is not None:
            E = transform(E)
        v = simplex_log_volume(E, X, sub)
        if best is None or v > best_v:
            best, best_v = E, v
    return best


#: out-of-subspace energy, in units of the noise's, above which a scene is
#: treated as having within-material variability. The accuracy suite's scenes of
#: P fixed spectra score 0.976–0.986; real scenes more (MUUFL Gulfport 1.05,
#: Samson 19); history in docs/EXPERIMENTS.md.
VARIABILITY_EXCESS = 1.03


def model_excess(X: np.ndarray, sigma: np.ndarray, p: int, max_pixels: int = 20000) -> float:
    """Energy of pixels X (N, B) outside their best P-dim subspace, over noise's share of it.

    ``mean ‖(I − UUᵀ)x‖² / (Σσ² (B − P)/B)`` with U the top-P right singular
    vectors of X: ≈ 1 when the pixels are mixtures of P spectra plus noise of
    std ``sigma`` (B,), more with spectral variability or more materials.
    """
    Xs = np.asarray(X[:: max(1, len(X) // max_pixels)], np.float64)
    B = Xs.shape[1]
    if p >= B:
        return 1.0
    U = np.linalg.svd(Xs, full_matrices=False)[2][:p].T
    R = Xs - (Xs @ U) @ U.T
    noise = float(np.sum(np.asarray(sigma, np.float64) ** 2)) * (B - p) / B
    return float(np.mean(np.sum(R**2, axis=1)) / max(noise, 1e-30))


def material_cores(E: np.ndarray, X: np.ndarray, k: int) -> list:
    """For each endmember of E (P, B), the indices of the ``k`` pixels of X (N, B) closest to it in angle."""
    norms = np.clip(np.linalg.norm(X, axis=1), 1e-12, None)  # (N,): no normalised copy of X
    k = int(np.clip(k, 1, len(X)))
    # ∝ cosine: the order is all that matters
    return [np.argpartition(-((X @ e.astype(X.dtype)) / norms), k - 1)[:k] for e in np.asarray(E, np.float64)]


def representative_endmembers(E: np.ndarray, X: np.ndarray, k: int) -> np.ndarray:
    """Each endmember replaced by the mean of the ``k`` pixels of X (N, B) closest to it in angle."""
    return np.clip(np.array([X[c].mean(axis=0, dtype=np.float64) for c in material_cores(E, X, k)]), 0.0, None)


def _unit(X: np.ndarray) -> np.ndarray:
    """Rows of X scaled to unit length (float64; for the few rows of endmembers, cores or a sample)."""
    X = np.asarray(X, np.float64)
    return X / np.clip(np.linalg.norm(X, axis=-1, keepdims=True), 1e-12, None)


def next_core(X: np.ndarray, E: np.ndarray, k: int, candidates: int = 20) -> np.ndarray:
    """A material the endmembers E (P', B) miss: the mean of the ``k`` pixels of X (N, B) closest in
    angle to a pixel far, in angle, from the span of E. Of the ``candidates`` pixels farthest from
    the span, the one whose core lies farthest on average is taken (one noisy pixel cannot seed a core).
    X stays in its own float type (no normalised copy of a window's pixels)."""
    k = int(np.clip(k, 1, len(X)))
    norms = np.clip(np.linalg.norm(X, axis=1), 1e-12, None)
    basis = np.linalg.qr(_unit(E).T)[0].astype(X.dtype)
    # distance of the unit pixels to the span: √(1 − ‖Bᵀu‖²)
    dist = np.sqrt(np.clip(1.0 - np.sum((X @ basis) ** 2, axis=1) / norms ** 2, 0.0, None))
    best, best_d = None, -1.0
    for i in np.argpartition(-dist, min(candidates, len(X)) - 1)[:candidates]:
        core = material_cores(X[i][None], X, k)[0]
        if dist[core].mean() > best_d:
            best, best_d = core, float(dist[core].mean())
    return np.clip(X[best].mean(axis=0, dtype=np.float64), 0.0, None)


def cone_residual(X: np.ndarray, E: np.ndarray, max_pixels: int = 20000) -> float:
    """Mean squared distance of the unit pixels X (N, B) (at most ``max_pixels``, evenly strided) to
    the cone of the endmembers E (P, B): how much of the pixels' shapes no scaled mixture of E explains."""
    from ..classical.fcls import nnls

    U, V = _unit(X[:: max(1, len(X) // max_pixels)]), _unit(E)
    return float(np.mean(np.sum((U - nnls(U, V) @ V) ** 2, axis=1)))


#: a core that stands for no material of its own is replaced only if the scene's pixels are then
#: explained this much better (:func:`cone_residual`, relative)
CORE_SWAP_GAIN = 0.05


def _redundant(E: np.ndarray, X: np.ndarray, cores: list) -> list:
    """Endmembers whose core mean lies closer to the cone of the others than its own pixels lie to
    it (median angle): a scaled mixture of the others, not a material of its own; most redundant first."""
    from ..classical.fcls import nnls

    V = _unit(E)
    ratio = {}
    for j, core in enumerate(cores):
        others = np.delete(V, j, axis=0)
        to_cone = float(np.linalg.norm(V[j] - nnls(V[j][None], others)[0] @ others))
        spread = float(np.median(np.arccos(np.clip(_unit(X[core]) @ V[j], -1.0, 1.0))))
        if to_cone < spread:
            ratio[j] = to_cone / max(spread, 1e-12)
    return sorted(ratio, key=ratio.get)


def separate_cores(E: np.ndarray, X: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Representative endmembers E (P, B) that stand for no material of their own are moved to a
    material the others miss (:func:`next_core`), every core then taken again around the new set;
    at most P times.

    - Two cores (:func:`material_cores` of X (N, B)) that share pixels stand for one material: the
      later of the pair moves.
    - A core whose mean lies within its own pixels' spread of the cone of the others is a scaled
      mixture of them (a bright material's variant darkened, where a dark material was missed): it
      moves if the pixels are then explained better by :data:`CORE_SWAP_GAIN` (:func:`cone_residual`);
      a dark material the scene does hold (shadow) keeps its core, as nothing explains the pixels better.

    VCA's next endmember is the pixel with the largest projection orthogonal to those found; with
    within-material variability a bright material's own extreme variants can project further than
    a darker material's pure pixels, and two endmembers land on one material while another has none
    (docs/EXPERIMENTS.md). In angle a variant lies a few hundredths of a radian from its material's
    core, another material tenths away.

    Returns:
        (endmembers (P, B), how many were replaced).
    """
    E = np.array(E, np.float64)
    replaced = 0

    def moved(E, j):
        E = E.copy()
        E[j] = next_core(X, np.delete(E, j, axis=0), k)
        # the new core is centred on an extreme pixel: every core is taken again around the new set
        return representative_endmembers(E, X, k)

    for _ in range(len(E)):
        cores = material_cores(E, X, k)
        shared = [set(c.tolist()) for c in cores]
        pair = next(((i, j) for j in range(len(E)) for i in range(j) if shared[i] & shared[j]), None)
        if pair is not None:
            E = moved(E, pair[1])
        else:
            fit = cone_residual(X, E)
            for j in _redundant(E, X, cores):
                E_new = moved(E, j)
                if cone_residual(X, E_new) <= (1.0 - CORE_SWAP_GAIN) * fit:
                    E = E_new
                    break
            else:
                break
        replaced += 1
    return E, replaced


def scale_variability(Y: np.ndarray, E: np.ndarray, sigma: np.ndarray, seed: int = 0,
                      max_pixels: int = 65536) -> tuple[float, float]:
    """How much more the NNLS abundance sums vary than noise alone would make them
    (on at most ``max_pixels`` of the pixels Y (N, B), evenly strided).

    Returns:
        (ratio of the std of Σa over the pixels to that of a noise-only
        simulation with the same endmembers and FCLS abundances, std of Σa).
    """
    from ..classical.fcls import fcls, nnls

    Y = Y[:: -(-len(Y) // max_pixels)]  # a strided sample is plenty for two standard deviations
    rng = np.random.default_rng(seed)
    s = nnls(Y, E).sum(axis=1)
    sim = fcls(Y, E).astype(np.float64) @ E + np.asarray(sigma)[None, :] * rng.standard_normal(Y.shape)
    s_sim = nnls(sim, E).sum(axis=1)
    return float(s.std() / max(s_sim.std(), 1e-12)), float(s.std())


def scale_share(Y: np.ndarray, E: np.ndarray, sigma: np.ndarray, max_pixels: int = 20000) -> float:
    """The share of the linear model's misfit that one scale per pixel explains, on at most
    ``max_pixels`` of the pixels Y (N, B): ``(R_fcls − R_nnls) / (R_fcls − Σσ²)``, R the mean squared
    residual with endmembers E (P, B) and σ (B,) the noise std (:func:`fit_ratio`).

    Near 1 when the pixels are scaled mixtures (illumination, topography); well below when the misfit
    is within-material variability, which a single scale per pixel cannot follow, and where the scaled
    model's free sum turns the variability into abundance error. 0 when FCLS fits to the noise.
    """
    from ..classical.fcls import nnls

    r_lin, r_scaled = fit_ratio(Y, E, sigma, max_pixels), fit_ratio(Y, E, sigma, max_pixels, solve=nnls)
    return (r_lin - r_scaled) / (r_lin - 1.0) if r_lin > 1.0 else 0.0  # in noise units: noise alone is 1


def noise_sigma(Y: np.ndarray) -> np.ndarray:
    """Per-band noise std (B,) of pixels (N, B) by HySime's multiple regression."""
    from ..classical.endmembers import estimate_noise

    _, Rn = estimate_noise(np.asarray(Y[: min(len(Y), 20000)], np.float64))
    return np.sqrt(np.clip(np.diag(Rn), 1e-12, None))


def windows_pixels(cubes, radius: int = 1):
    """Valid pixels of scene windows, raw and bilateral-filtered (``radius``: 1 → 3×3, 2 → 5×5).

    Args:
        cubes: ``[(cube (B, h, w), valid (h, w)), ...]``, e.g. :func:`core.deep.run.window_cubes`.

    Returns:
        (raw (N, B), filtered (N, B), both in the windows' float type, sigma (B,) float64),
        valid pixels only; None without windows.
    """
    if not cubes:
        return None
    offsets = np.concatenate([[0], np.cumsum([int(valid.sum()) for _, valid in cubes])])
    # filled window by window (no second copy), in the windows' float type (float32 from a
    # RasterReader): the filter runs in float64, its result is stored at the data's precision
    shape = (int(offsets[-1]), cubes[0][0].shape[0])
    dtype = np.result_type(cubes[0][0].dtype, np.float32)
    raw, filt = np.empty(shape, dtype), np.empty(shape, dtype)
    for (cube, valid), i, j in zip(cubes, offsets[:-1], offsets[1:]):
        raw[i:j] = cube[:, valid].T
    sigma = noise_sigma(raw)
    for (cube, valid), i, j in zip(cubes, offsets[:-1], offsets[1:]):
        c = np.array(cube, np.float64)
        if not valid.all():  # fill gaps with the window mean so they do not bleed NaN
            c[:, ~valid] = np.nanmean(c[:, valid], axis=1)[:, None]
        filt[i:j] = bilateral_np(c, sigma, radius=radius)[:, valid].T
    return raw, filt, sigma


#: the minimum-volume endmembers replace plain VCA's only if their reconstruction residual (noise units)
#: is at most this much larger: on a clean scene whose pure pixels are few, the volume term can pull the
#: simplex inside the data (0.04–0.06 rad off where VCA is 0.003, residual +30–40 %); at 20–30 dB the
#: minimum-volume residual is at or below VCA's (VCA picks noisy pixels), so they stay
START_FIT_MARGIN = 0.05


def fit_ratio(Y: np.ndarray, E: np.ndarray, sigma: np.ndarray, max_pixels: int = 20000, solve=None) -> float:
    """FCLS reconstruction residual of pixels Y (N, B) with endmembers E (P, B), in noise units:
    ``mean ‖y − Eᵀâ‖² / Σσ²`` (≈ (B − P + 1)/B for the right endmembers; more when the simplex
    leaves pixels outside it). ``solve``: another ``(Y, E) → coefficients`` than FCLS (e.g. NNLS)."""
    from ..classical.fcls import fcls

    Ys = np.asarray(Y[:: max(1, len(Y) // max_pixels)], np.float64)
    R = Ys - (solve or fcls)(Ys, E) @ np.asarray(E, np.float64)
    return float(np.mean(np.sum(R ** 2, axis=1)) / max(float(np.sum(np.asarray(sigma) ** 2)), 1e-30))


def start_check(Y: np.ndarray, candidates: dict, sigma: np.ndarray, margin: float = START_FIT_MARGIN) -> dict:
    """The simpler start (the first of ``candidates``) unless the other explains the pixels
    ``Y`` (N, B) as well, within ``margin`` (:func:`fit_ratio`).

    Returns:
        ``{"fit_ratio": {name: ratio}, "margin": margin, "chosen": name}``.
    """
    (simple, E_s), (other, E_o) = list(candidates.items())[:2]
    r = {simple: fit_ratio(Y, E_s, sigma), other: fit_ratio(Y, E_o, sigma)}
    chosen = other if r[other] <= (1.0 + margin) * r[simple] else simple
    return {"fit_ratio": r, "margin": margin, "chosen": chosen}


def robust_endmembers(cubes, p: int, seed: int = 0, progress=None, max_fit_pixels: int = 10000) -> dict:
    """Denoise → VCA → variability test → minimum volume or representative
    spectra → scale test (module doc), on scene windows ``[(cube, valid), ...]``
    (:func:`core.deep.run.window_cubes`).

    Returns:
        dict with ``E`` (P, B), ``mixing`` (:data:`LINEAR` or :data:`SCALED`),
        ``sigma`` (B,) raw-data noise std, ``scale_ratio``, ``scale_std``,
        ``model_excess``, ``variability`` (bool) and ``start_check`` (:func:`start_check`'s
        verdict between plain VCA and the minimum-volume simplex, None on the variability
        branch); None when no valid pixel.
    """
    from ..classical.endmembers import vca

    got = windows_pixels(cubes, radius=ENDMEMBER_FILTER_RADIUS)
    if got is None:
        return None
    raw, filt, sigma = got
    sigma_f = noise_sigma(filt)
    excess = model_excess(raw, sigma, p)
    variable = excess > VARIABILITY_EXCESS
    check = None  # the representative spectra are a measured choice of their own (the variability test)
    replaced = 0
    if variable:
        # the core of each material: about a third of its share of the pixels (docs/EXPERIMENTS.md).
        # Restarts are compared by the volume of these cores: the most extreme VCA pixels
        # are the likeliest to be variability outliers.
        k = max(3, len(filt) // (3 * p))
        E_vca = vca_max_volume(filt, p, seed=seed, transform=lambda E: representative_endmembers(E, filt, k))
        E_vca, replaced = separate_cores(E_vca, filt, k)
        E_mv = E_vca
    else:
        E_vca = vca_max_volume(filt, p, seed=seed)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(filt))
        fit = filt[order[:max_fit_pixels]]
        torch.manual_seed(seed)
        E_mv = min_volume(fit, E_vca, sigma_f, progress=progress)
        # never worse than the classical start: the minimum-volume simplex must explain the pixels it was
        # not fitted on as well as plain VCA's endmembers do (issue 14, item 4)
        held = raw[order[max_fit_pixels:]] if len(raw) > max_fit_pixels else raw
        E_plain = np.clip(vca(raw, p, seed=seed)[0], 0.0, None)
        check = start_check(held, {"plain VCA": E_plain, "minimum volume": E_mv}, sigma)
        if check["chosen"] == "plain VCA":
            E_mv = E_vca = E_plain
    ratio, spread = scale_variability(filt, E_mv, sigma_f, seed)
    # noise-free data: any spread exceeds "noise". Sums that spread mean pixels the fixed-spectra model does
    # not hold, which the minimum-volume simplex swells to enclose: the VCA endmembers stay. A scale that
    # explains little of the misfit they leave is within-material variability (that the excess test can
    # miss at low SNR), not illumination: the linear model stays
    spread_out = ratio > 2.0 and spread > MIN_SCALE_SPREAD
    share = scale_share(filt, E_vca, sigma_f) if spread_out else None
    scaled = spread_out and share >= MIN_SCALE_SHARE
    return {"E": E_vca if spread_out else E_mv, "mixing": SCALED if scaled else LINEAR, "sigma": sigma,
            "scale_ratio": ratio, "scale_std": spread, "scale_share": share, "model_excess": excess,
            "variability": bool(variable), "cores_replaced": replaced, "start_check": check}


#: endmember draws of the block bootstrap (:func:`endmember_draws`), the blocks per window side, and
#: the most pixels one resample holds (m-out-of-n beyond it: each draw costs a robust start)
ENDMEMBER_DRAWS = 8
BOOTSTRAP_BLOCKS = 4
BOOTSTRAP_MAX_PIXELS = 20000


def bootstrap_blocks(cubes, per_side: int = BOOTSTRAP_BLOCKS, min_side: int = 8) -> list:
    """The scene windows ``[(cube (B, h, w), valid (h, w)), ...]`` cut into about
    ``per_side × per_side`` blocks each (blocks at least ``min_side`` pixels a side): the units
    a block bootstrap resamples. Blocks keep the spatial structure the endmember search sees
    (its bilateral filter, its neighbourhoods) while a resample changes which materials' pure
    pixels it meets, and how many."""
    out = []
    for cube, valid in cubes:
        h, w = valid.shape
        ny, nx = (max(1, min(per_side, n // min_side)) for n in (h, w))
        ys, xs = np.linspace(0, h, ny + 1).astype(int), np.linspace(0, w, nx + 1).astype(int)
        for y0, y1 in zip(ys[:-1], ys[1:]):
            for x0, x1 in zip(xs[:-1], xs[1:]):
                if valid[y0:y1, x0:x1].any():
                    out.append((cube[:, y0:y1, x0:x1], valid[y0:y1, x0:x1]))
    return out


def endmember_draws(cubes, E: np.ndarray, k: int = ENDMEMBER_DRAWS, seed: int = 0, progress=None) -> np.ndarray:
    """Draws of the endmember estimate by a spatial block bootstrap (Künsch 1989): the scene's
    blocks (:func:`bootstrap_blocks`) resampled with replacement, :func:`robust_endmembers` run
    again on each resample, its endmembers put in the order of ``E`` (Hungarian matching on the
    spectral angle).

    The spread of the draws is how much the estimate depends on which pixels the scene happened
    to hold (few pure pixels of a material, a simplex that hinges on a handful of them); it is
    not the estimate's bias, which no resample of the same scene reveals.

    Windows of more than :data:`BOOTSTRAP_MAX_PIXELS` valid pixels are thinned first (every
    f-th row and column of each block, so every block, and so every material, stays in reach
    of a resample), and the draws' deviations from their mean are shrunk by
    ``sqrt(thinned pixels / pixels)``: the spread of an estimate from all the pixels (the m out
    of n bootstrap, Bickel et al. 1997).

    Returns:
        (k, P, B) float64, or None when the windows hold too few blocks to resample (< 4).
    """
    from ..classical.metrics import match_endmembers

    n_px = sum(int(v.sum()) for _, v in cubes)
    f = max(1, int(np.ceil(np.sqrt(n_px / BOOTSTRAP_MAX_PIXELS))))
    blocks = [(c[:, ::f, ::f], v[::f, ::f]) for c, v in bootstrap_blocks(cubes)]
    if len(blocks) < 4:
        return None
    shrink = np.sqrt(sum(int(v.sum()) for _, v in blocks) / max(n_px, 1))
    rng = np.random.default_rng([int(seed), 0xB007])
    out = []
    for i in range(int(k)):
        if progress is not None:
            progress.check()
        pick = rng.integers(0, len(blocks), len(blocks))
        got = robust_endmembers([blocks[j] for j in pick], E.shape[0], seed=int(seed) + 1 + i)
        if got is None:
            continue
        out.append(got["E"][match_endmembers(E, got["E"])])
    if len(out) < 2:
        return None
    d = np.array(out)
    mean = d.mean(axis=0)
    return np.clip(mean + (d - mean) * shrink, 0.0, None) if f > 1 else d
