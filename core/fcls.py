"""Constrained least-squares abundance estimation, vectorised over pixels.

Every solver here works on the P-dimensional reduced problem: for a pixel
``y (B,)`` and endmembers ``E (P, B)``,

    ||y − Eᵀa||² = ||y||² − 2 a·z + aᵀGa,   z = E y  (P,),  G = E Eᵀ  (P, P),

so after one matmul ``Z = Y Eᵀ`` (N, P) nothing depends on the band count.

Fully constrained least squares (FCLS: a ≥ 0, Σa = 1) is solved exactly:

* ``P ≤ 8`` (method ``"enumerate"``): the optimum is the sum-to-one LS
  solution on its own support, so we precompute, for every non-empty subset S
  of endmembers, the affine operator ``z ↦ (a_S, ν_S)`` solving the KKT system
  ``[[G_S, 1], [1ᵀ, 0]] [a; ν] = [z_S; 1]``, and keep, per pixel, the
  feasible candidate (a_S ≥ 0) with the smallest objective. At the KKT point
  ``½aᵀGa − a·z = −½(a·z + ν)``, so the objective costs one dot product.
  Singleton supports are always feasible, so a candidate always exists.
* larger P (method ``"active-set"``): a primal active-set method
  (Lawson–Hanson style, with the sum-to-one row in the KKT system) run on all
  pixels at once with batched ``np.linalg.solve``; converged pixels drop out.

``nnls`` (a ≥ 0 only) uses the same two engines; ``unconstrained_ls`` and
``scls`` (Σa = 1 only) are closed forms. Input may be float32; the reduced
problem is solved in float64, outputs are float32. Rows of ``Y`` with any
non-finite value give NaN abundances.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import numpy as np

from .errors import UnmixError

__all__ = ["fcls", "nnls", "scls", "unconstrained_ls", "ENUMERATE_MAX_P"]

#: Largest P solved by exhaustive support enumeration (2^P − 1 subsets).
ENUMERATE_MAX_P = 8

_FEAS_TOL = 1e-10  # a_S ≥ −tol counts as feasible (normalised problem)
_BLOCK_ELEMS = 1 << 21  # candidate-matrix elements per row block (~16 MB)
_ZBLOCK = 8192  # rows cast to float64 at a time when forming Z = Y Eᵀ


# --------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------
def _check(Y: np.ndarray, E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Y = np.asarray(Y)
    E = np.asarray(E, dtype=np.float64)
    if Y.ndim != 2 or E.ndim != 2:
        raise UnmixError(f"expected Y (N, B) and E (P, B), got {Y.shape} and {E.shape}")
    if Y.shape[1] != E.shape[1]:
        raise UnmixError(f"band count mismatch: pixels have {Y.shape[1]}, endmembers {E.shape[1]}")
    if E.shape[0] < 1:
        raise UnmixError("at least one endmember is needed")
    if not np.all(np.isfinite(E)):
        raise UnmixError("endmember spectra contain non-finite values")
    if not np.issubdtype(Y.dtype, np.floating):
        Y = Y.astype(np.float64)
    return Y, E


def _scale(E: np.ndarray) -> float:
    """Common scale of E and Y (abundances are invariant to it)."""
    s = float(np.max(np.abs(E)))
    return s if s > 0 else 1.0


def _reduce(Y: np.ndarray, Et: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Z = Y Eᵀ`` in float64, row block by row block, and the finite-row mask.

    Args:
        Y: Pixels ``(n, B)`` any float dtype.
        Et: Scaled endmembers transposed ``(B, P)`` float64.

    Returns:
        ``Z (n, P)`` float64 (0 on invalid rows), ``valid (n,)`` bool.
    """
    n = Y.shape[0]
    Z = np.zeros((n, Et.shape[1]))
    valid = np.ones(n, dtype=bool)
    for s in range(0, n, _ZBLOCK):
        blk = Y[s : s + _ZBLOCK].astype(np.float64)
        ok = np.isfinite(blk).all(axis=1)
        if not ok.all():
            blk[~ok] = 0.0
            valid[s : s + _ZBLOCK] = ok
        Z[s : s + _ZBLOCK] = blk @ Et
    return Z, valid


def _run(Y, E, chunk, solve) -> np.ndarray:
    """Chunked driver: reduce each chunk, solve, write float32 output."""
    Y, E = _check(Y, E)
    if chunk < 1:
        raise UnmixError("chunk must be positive")
    s = _scale(E)
    Es = E / s
    G = Es @ Es.T
    Et = Es.T / s  # Z = (Y / s) (E / s)ᵀ
    out = np.empty((Y.shape[0], E.shape[0]), dtype=np.float32)
    for i in range(0, Y.shape[0], chunk):
        Z, valid = _reduce(Y[i : i + chunk], Et)
        A = np.full(Z.shape, np.nan)
        if valid.any():
            A[valid] = solve(Z[valid], G)
        out[i : i + chunk] = A
    return out


# --------------------------------------------------------------------------
# closed forms
# --------------------------------------------------------------------------
def unconstrained_ls(Y: np.ndarray, E: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Unconstrained least squares ``argmin_a ||y − Eᵀa||²`` per pixel.

    Args:
        Y: Pixels ``(N, B)``.
        E: Endmembers ``(P, B)``.
        chunk: Pixels processed per chunk.

    Returns:
        ``A (N, P)`` float32; NaN rows where ``Y`` has non-finite values.
    """
    def solve(Z, G):
        return Z @ np.linalg.pinv(G, rcond=1e-12, hermitian=True)

    return _run(Y, E, chunk, solve)


def _kkt_operator(Gs: np.ndarray, sum_to_one: bool) -> tuple[np.ndarray, np.ndarray]:
    """Affine map ``z_S ↦ [a_S; ν]`` for the LS problem restricted to S.

    Args:
        Gs: Gram matrix of the subset ``(k, k)``.
        sum_to_one: Add the Σa = 1 row (ν is its multiplier), else ν ≡ 0.

    Returns:
        ``W (k, k+1)``, ``b (k+1,)`` with ``[a, ν] = z_S W + b``; ``W`` is None
        when the system is (numerically) singular.
    """
    k = Gs.shape[0]
    if sum_to_one:
        K = np.zeros((k + 1, k + 1))
        K[:k, :k] = Gs
        K[:k, k] = 1.0
        K[k, :k] = 1.0
    else:
        K = np.eye(k + 1)
        K[:k, :k] = Gs
    if np.linalg.cond(K) > 1e12:
        return None, None
    Kinv = np.linalg.inv(K)
    W = Kinv[:, :k].T.copy()  # (k, k+1)
    b = Kinv[:, k] if sum_to_one else np.zeros(k + 1)
    return W, b


@lru_cache(maxsize=32)
def _subset_plan(G_bytes: bytes, p: int, sum_to_one: bool) -> tuple:
    """Candidate operators for all supports, grouped by support size.

    Cached per Gram matrix, so chunked calls build it once.

    Returns:
        One tuple per size k = 1..P: ``idx (C, k)`` the supports,
        ``W (P, C·k + C)`` and ``b (C·k + C,)`` mapping ``z`` to every
        support's abundances (first ``C·k`` columns, support-major) and
        multipliers ν (last C columns), ``zcols (C·k,)`` the z entry paired
        with each abundance column, ``usable (C,)`` False for degenerate
        supports (skipped: a smaller support reaches their optimum).
    """
    G = np.frombuffer(G_bytes).reshape(p, p)
    plan = []
    for k in range(1, p + 1):
        idx = np.array(list(combinations(range(p), k)), dtype=np.int64)
        c = idx.shape[0]
        W = np.zeros((p, c * k + c))
        b = np.zeros(c * k + c)
        usable = np.ones(c, dtype=bool)
        for j, sub in enumerate(idx):
            Wj, bj = _kkt_operator(G[np.ix_(sub, sub)], sum_to_one)
            if Wj is None:
                usable[j] = False
                continue
            W[sub, j * k : (j + 1) * k] = Wj[:, :k]
            W[sub, c * k + j] = Wj[:, k]
            b[j * k : (j + 1) * k] = bj[:k]
            b[c * k + j] = bj[k]
        plan.append((idx, W, b, idx.reshape(-1), usable))
    return tuple(plan)


def _enumerate(Z: np.ndarray, G: np.ndarray, sum_to_one: bool) -> np.ndarray:
    """Exact constrained LS by support enumeration (see module doc).

    Args:
        Z: Reduced pixels ``(n, P)`` float64.
        G: Gram matrix ``(P, P)``.
        sum_to_one: FCLS when True, NNLS when False.

    Returns:
        ``A (n, P)`` float64.
    """
    n, p = Z.shape
    A = np.zeros((n, p))
    todo = np.arange(n)
    if sum_to_one:
        # Fast path: pixels whose full-support solution is feasible are done.
        W, b = _kkt_operator(G, True)
        if W is not None:
            X = Z @ W + b
            ok = (X[:, :p] >= -_FEAS_TOL).all(axis=1)
            A[ok] = X[ok, :p]
            todo = np.flatnonzero(~ok)
    if todo.size:
        plan = _subset_plan(np.ascontiguousarray(G).tobytes(), p, sum_to_one)
        width = max(W.shape[1] for _, W, _, _, _ in plan)
        rows = max(256, _BLOCK_ELEMS // width)
        for s in range(0, todo.size, rows):
            sel = todo[s : s + rows]
            A[sel] = _enumerate_block(Z[sel], plan, sum_to_one)
    A = np.clip(A, 0.0, None)
    if sum_to_one:
        A /= A.sum(axis=1, keepdims=True)
    return A


def _enumerate_block(Zb: np.ndarray, plan: tuple, sum_to_one: bool) -> np.ndarray:
    """Best feasible candidate over all supports for a block ``Zb (m, P)``."""
    m, p = Zb.shape
    r = np.arange(m)
    best = np.zeros(m)  # NNLS: the empty support (a = 0) has objective 0
    if sum_to_one:
        best[:] = np.inf
    A = np.zeros((m, p))
    for idx, W, b, zcols, usable in plan:
        c, k = idx.shape
        X = Zb @ W + b
        Xa = X[:, : c * k].reshape(m, c, k)
        # 2 × objective at the KKT point, −(a·z + ν), up to the constant ||y||²
        obj = -(np.einsum("mck,mck->mc", Xa, Zb[:, zcols].reshape(m, c, k)) + X[:, c * k :])
        obj[(Xa.min(axis=2) < -_FEAS_TOL) | ~usable] = np.inf
        j = np.argmin(obj, axis=1)
        val = obj[r, j]
        upd = np.flatnonzero(val < best)
        if upd.size:
            best[upd] = val[upd]
            A[upd] = 0.0
            A[upd[:, None], idx[j[upd]]] = Xa[upd, j[upd]]
    return A


# --------------------------------------------------------------------------
# active set (large P)
# --------------------------------------------------------------------------
def _active_set(Z: np.ndarray, G: np.ndarray, sum_to_one: bool, max_iter: int = 0) -> np.ndarray:
    """Primal active-set method for all pixels at once.

    Minimises ``½aᵀGa − a·z`` subject to ``a ≥ 0`` (and ``Σa = 1``). Each
    iteration solves, per pixel, the equality-constrained problem on the free
    set F (bound variables fixed at 0) as one batched linear solve; a step to
    an infeasible solution is shortened to the first blocking bound (which
    leaves F); at a feasible solution the most negative bound multiplier
    ``λ_j = (Ga − z)_j + ν`` enters F; all λ ≥ 0 is optimal (KKT).

    Args:
        Z: Reduced pixels ``(n, P)`` float64.
        G: Gram matrix ``(P, P)``.
        sum_to_one: FCLS when True, NNLS when False.
        max_iter: Iteration cap (default ``10 P + 20``); pixels still running
            then keep their current (feasible) iterate.

    Returns:
        ``A (n, P)`` float64.
    """
    n, p = Z.shape
    scale = float(np.trace(G)) / p
    G = G + 1e-12 * scale * np.eye(p)  # keeps free-set systems non-singular
    lam_tol = 1e-11 * scale
    if sum_to_one:
        A = np.full((n, p), 1.0 / p)
        free = np.ones((n, p), dtype=bool)
    else:
        A = np.zeros((n, p))
        free = np.zeros((n, p), dtype=bool)
    run = np.arange(n)
    eye = np.eye(p, dtype=bool)
    for _ in range(max_iter or 10 * p + 20):
        if run.size == 0:
            break
        a, f, z = A[run], free[run], Z[run]
        m = run.size
        K = np.zeros((m, p + 1, p + 1))
        K[:, :p, :p] = np.where(f[:, :, None] & f[:, None, :], G, 0.0) + (~f[:, :, None] & eye)
        rhs = np.zeros((m, p + 1))
        rhs[:, :p] = np.where(f, z, 0.0)
        if sum_to_one:
            K[:, :p, p] = f
            K[:, p, :p] = f
            rhs[:, p] = 1.0
        else:
            K[:, p, p] = 1.0
        sol = np.linalg.solve(K, rhs[:, :, None])[:, :, 0]
        cand, nu = sol[:, :p], sol[:, p]
        bad = f & (cand < 0.0)
        step = bad.any(axis=1)
        done = np.zeros(m, dtype=bool)
        if step.any():
            i = np.flatnonzero(step)
            ai, ci, bi = a[i], cand[i], bad[i]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(bi, ai / (ai - ci), np.inf)
            alpha = np.clip(ratio.min(axis=1), 0.0, 1.0)
            block = np.argmin(ratio, axis=1)
            new = ai + alpha[:, None] * (ci - ai)
            leave = f[i] & (new <= 1e-14)
            leave[np.arange(i.size), block] = True
            new[leave] = 0.0
            a[i] = new
            f[i] = f[i] & ~leave
        ok = np.flatnonzero(~step)
        if ok.size:
            a[ok] = np.where(f[ok], cand[ok], 0.0)
            grad = a[ok] @ G - z[ok] + (nu[ok, None] if sum_to_one else 0.0)
            lam = np.where(f[ok], np.inf, grad)
            j = np.argmin(lam, axis=1)
            worst = lam[np.arange(ok.size), j]
            conv = worst >= -lam_tol
            done[ok[conv]] = True
            enter = ok[~conv]
            f[enter, j[~conv]] = True
        A[run], free[run] = a, f
        run = run[~done]
    A = np.clip(A, 0.0, None)
    if sum_to_one:
        A /= A.sum(axis=1, keepdims=True)
    return A


def _solver(p: int, method: str, sum_to_one: bool):
    if method not in ("auto", "enumerate", "active-set"):
        raise UnmixError(f"unknown method {method!r} (auto, enumerate, active-set)")
    if method == "auto":
        method = "enumerate" if p <= ENUMERATE_MAX_P else "active-set"
    if method == "enumerate":
        return lambda Z, G: _enumerate(Z, G, sum_to_one)
    return lambda Z, G: _active_set(Z, G, sum_to_one)


# --------------------------------------------------------------------------
# public solvers
# --------------------------------------------------------------------------
def fcls(Y: np.ndarray, E: np.ndarray, chunk: int = 65536, method: str = "auto") -> np.ndarray:
    """Fully constrained least squares: ``argmin ||y − Eᵀa||²``, a ≥ 0, Σa = 1.

    Args:
        Y: Pixels ``(N, B)``, float32 or float64.
        E: Endmembers ``(P, B)``.
        chunk: Pixels reduced and solved per chunk (bounds memory).
        method: ``"auto"`` (enumeration for P ≤ 8, else active set),
            ``"enumerate"`` or ``"active-set"``.

    Returns:
        ``A (N, P)`` float32, rows non-negative and summing to one; NaN rows
        where ``Y`` has a non-finite value.

    Raises:
        UnmixError: On shape mismatch or non-finite endmembers.
    """
    return _run(Y, E, chunk, _solver(np.asarray(E).shape[0], method, True))


def nnls(Y: np.ndarray, E: np.ndarray, chunk: int = 65536, method: str = "auto") -> np.ndarray:
    """Non-negative least squares ``argmin ||y − Eᵀa||²``, a ≥ 0, per pixel.

    Args:
        Y: Pixels ``(N, B)``.
        E: Endmembers ``(P, B)``.
        chunk: Pixels per chunk.
        method: As in :func:`fcls`.

    Returns:
        ``A (N, P)`` float32; NaN rows where ``Y`` has a non-finite value.
    """
    return _run(Y, E, chunk, _solver(np.asarray(E).shape[0], method, False))


def scls(Y: np.ndarray, E: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Sum-to-one constrained least squares (abundances may be negative).

    Args:
        Y: Pixels ``(N, B)``.
        E: Endmembers ``(P, B)``.
        chunk: Pixels per chunk.

    Returns:
        ``A (N, P)`` float32 with rows summing to one; NaN rows for invalid
        pixels.

    Raises:
        UnmixError: If the endmembers' affine hull is degenerate.
    """
    def solve(Z, G):
        W, b = _kkt_operator(G, True)
        if W is None:
            raise UnmixError("endmembers are affinely dependent; sum-to-one LS is ill-posed")
        return (Z @ W + b)[:, : G.shape[0]]

    return _run(Y, E, chunk, solve)
