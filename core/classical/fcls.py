"""Constrained least-squares abundance estimation, vectorised over pixels.

Every solver here works on the P-dimensional reduced problem: for a pixel
``y (B,)`` and endmembers ``E (P, B)``,

    ||y − Eᵀa||² = ||y||² − 2 a·z + aᵀGa,   z = E y  (P,),  G = E Eᵀ  (P, P),

so after one matmul ``Z = Y Eᵀ`` (N, P) nothing depends on the band count.

Fully constrained least squares (FCLS: a ≥ 0, Σa = 1) is solved exactly:

* ``P ≤ ENUMERATE_MAX_P`` (method ``"enumerate"``): the optimum is the
  sum-to-one LS solution on its own support, so for every non-empty support S
  we precompute the affine map ``z ↦ (a_S, ν_S)`` solving the KKT system
  ``[[G_S, 1], [1ᵀ, 0]] [a; ν] = [z_S; 1]`` and keep, per pixel, the feasible
  candidate (a_S ≥ 0) of least objective; at the KKT point
  ``½aᵀGa − a·z = −½(a·z + ν)``. Singletons are always feasible.
* larger P (method ``"active-set"``): a primal active-set method
  (Lawson–Hanson style, sum-to-one row in the KKT system) on all pixels at
  once; converged pixels drop out.

``nnls`` (a ≥ 0 only) uses the same two engines. Input may be float32; the reduced
problem is solved in float64, outputs are float32. Rows of ``Y`` with any
non-finite value give NaN abundances.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import numpy as np

from ..errors import UnmixError

__all__ = ["fcls", "nnls", "ENUMERATE_MAX_P"]

#: Largest P solved by exhaustive support enumeration (2^P − 1 subsets).
ENUMERATE_MAX_P = 5
#: Largest P whose active-set solves use a table of all 2^P free-set operators.
LOOKUP_MAX_P = 10

_FEAS_TOL = 1e-10  # a_S ≥ −tol counts as feasible (normalised problem)
_BLOCK_ELEMS = 1 << 21  # candidate-matrix elements per row block (~16 MB)
_AS_BLOCK = 8192  # pixels per block in the active-set update path
_ZBLOCK = 8192  # rows cast to float64 at a time when forming Z = Y Eᵀ


# --------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------
def check_shapes(y_shape: tuple, E: np.ndarray) -> None:
    """Refuse pixel/endmember arrays that cannot be unmixed (shared with :mod:`core.deep.fcls_torch`)."""
    if len(y_shape) != 2 or E.ndim != 2:
        raise UnmixError(f"expected Y (N, B) and E (P, B), got {tuple(y_shape)} and {E.shape}")
    if y_shape[1] != E.shape[1]:
        raise UnmixError(f"band count mismatch: pixels have {y_shape[1]}, endmembers {E.shape[1]}")
    if E.shape[0] < 1:
        raise UnmixError("at least one endmember is needed")
    if not np.all(np.isfinite(E)):
        raise UnmixError("endmember spectra contain non-finite values")


def _check(Y: np.ndarray, E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Y = np.asarray(Y)
    E = np.asarray(E, dtype=np.float64)
    check_shapes(Y.shape, E)
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
    K = _kkt_systems(np.ones((1, k), dtype=bool), Gs, sum_to_one)[0][0]
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
        support's abundances (first ``C·k`` columns, component-major: column
        ``i·C + j`` is component i of support j, so reductions over the
        component axis are slab-wise) and multipliers ν (last C columns),
        ``zcols (C·k,)`` the z entry paired
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
            W[sub, j : c * k : c] = Wj[:, :k]
            W[sub, c * k + j] = Wj[:, k]
            b[j : c * k : c] = bj[:k]
            b[c * k + j] = bj[k]
        plan.append((idx, W, b, idx.T.reshape(-1), usable))
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
        Xa = X[:, : c * k].reshape(m, k, c)
        # 2 × objective at the KKT point, −(a·z + ν), up to the constant ||y||²
        obj = -(np.einsum("mkc,mkc->mc", Xa, Zb[:, zcols].reshape(m, k, c)) + X[:, c * k :])
        obj[(np.minimum.reduce(Xa, axis=1) < -_FEAS_TOL) | ~usable] = np.inf
        j = np.argmin(obj, axis=1)
        val = obj[r, j]
        upd = np.flatnonzero(val < best)
        if upd.size:
            best[upd] = val[upd]
            A[upd] = 0.0
            A[upd[:, None], idx[j[upd]]] = Xa[upd, :, j[upd]]
    return A


# --------------------------------------------------------------------------
# active set (large P)
# --------------------------------------------------------------------------
def _kkt_systems(f: np.ndarray, G: np.ndarray, sum_to_one: bool) -> tuple[np.ndarray, np.ndarray]:
    """KKT matrices for free sets ``f (m, P)`` (bound variables pinned at 0).

    Returns:
        ``K (m, P+1, P+1)`` and ``rhs (m, P+1)`` with the z part left at 0.
    """
    m, p = f.shape
    K = np.zeros((m, p + 1, p + 1))
    K[:, :p, :p] = np.where(f[:, :, None] & f[:, None, :], G, 0.0)
    K[:, :p, :p] += ~f[:, :, None] & np.eye(p, dtype=bool)
    rhs = np.zeros((m, p + 1))
    if sum_to_one:
        K[:, :p, p] = f
        K[:, p, :p] = f
        K[:, p, p] = ~f.any(axis=1)  # empty free set never occurs; keep it regular
        rhs[:, p] = 1.0
    else:
        K[:, p, p] = 1.0
    return K, rhs


@lru_cache(maxsize=8)
def _lookup_table(G_bytes: bytes, p: int, sum_to_one: bool) -> tuple[np.ndarray, np.ndarray]:
    """Solution operators of every free set (cached per Gram matrix).

    Returns:
        ``Wt (2^P, P, P+1)`` and ``bt (2^P, P+1)``: for a free-set bitmask
        ``s``, ``[a, ν] = Σ_q z_q Wt[s, q] + bt[s]``.
    """
    G = np.frombuffer(G_bytes).reshape(p, p)
    masks = (np.arange(1 << p)[:, None] >> np.arange(p)) & 1 == 1
    K, rhs = _kkt_systems(masks, G, sum_to_one)
    Kinv = np.linalg.inv(K)
    # [a, ν] = Kinv [z·f; rhs tail]: fold the mask into the z columns
    Wt = np.ascontiguousarray((Kinv[:, :, :p] * masks[:, None, :]).transpose(0, 2, 1))
    return Wt, np.einsum("mij,mj->mi", Kinv, rhs)


def _active_set(Z: np.ndarray, G: np.ndarray, sum_to_one: bool, max_iter: int = 0) -> np.ndarray:
    """Primal active-set method for all pixels at once.

    Minimises ``½aᵀGa − a·z`` subject to ``a ≥ 0`` (and ``Σa = 1``). Each
    iteration solves, per pixel, the equality-constrained problem on the free
    set F (bound variables pinned at 0); a step to an infeasible solution is
    shortened to the first blocking bound, which leaves F; at a feasible
    solution the most negative bound multiplier ``λ_j = (Ga − z)_j + ν``
    enters F; all λ ≥ 0 is optimal (KKT). Free-set solves use a table of all
    2^P operators for P ≤ ``LOOKUP_MAX_P``, else a per-pixel inverse of the
    KKT matrix kept up to date by bordering / Schur-complement updates, O(P²)
    per change. Converged pixels drop out.

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
    G = G + 1e-10 * scale * np.eye(p)  # keeps free-set systems non-singular
    table = _lookup_table(G.tobytes(), p, sum_to_one) if p <= LOOKUP_MAX_P else None
    block = n if table is not None else _AS_BLOCK
    A = np.empty((n, p))
    for s in range(0, n, block):
        A[s : s + block] = _active_set_block(
            Z[s : s + block], G, sum_to_one, table, 1e-9 * scale, max_iter or 10 * p + 20
        )
    A = np.clip(A, 0.0, None)
    if sum_to_one:
        A /= A.sum(axis=1, keepdims=True)
    return A


def _active_set_block(Z, G, sum_to_one, table, lam_tol, max_iter) -> np.ndarray:
    """One block of :func:`_active_set` (``Z (m, P)`` -> ``A (m, P)``)."""
    m, p = Z.shape
    A = np.full((m, p), 1.0 / p) if sum_to_one else np.zeros((m, p))
    free = np.full((m, p), sum_to_one)
    bits = 1 << np.arange(p)
    if table is None:
        K0, _ = _kkt_systems(free[:1], G, sum_to_one)
        Minv = np.repeat(np.linalg.inv(K0), m, axis=0)  # (m, P+1, P+1)
    run = np.arange(m)
    for _ in range(max_iter):
        if run.size == 0:
            break
        a, f, z = A[run], free[run], Z[run]
        r = np.arange(run.size)
        if table is not None:
            Wt, bt = table
            ids = f @ bits
            sol = bt[ids]
            for q in range(p):
                sol += z[:, q, None] * Wt[ids, q]
        else:
            M = Minv[run]
            rhs = np.concatenate([np.where(f, z, 0.0), np.full((r.size, 1), float(sum_to_one))], 1)
            sol = np.einsum("mij,mj->mi", M, rhs)
        cand, nu = sol[:, :p], sol[:, p]
        bad = f & (cand < 0.0)
        step = bad.any(axis=1)
        # infeasible: move towards cand until the first bound blocks; it leaves F
        i = np.flatnonzero(step)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(bad[i], a[i] / (a[i] - cand[i]), np.inf)
        out = np.argmin(ratio, axis=1)
        alpha = np.clip(ratio[np.arange(i.size), out], 0.0, 1.0)
        a[i] += alpha[:, None] * (cand[i] - a[i])
        a[i, out] = 0.0
        f[i, out] = False
        # feasible: accept cand, then free the most negative multiplier
        ok = np.flatnonzero(~step)
        a[ok] = np.where(f[ok], cand[ok], 0.0)
        grad = a[ok] @ G - z[ok] + (nu[ok, None] if sum_to_one else 0.0)
        lam = np.where(f[ok], np.inf, grad)
        j = np.argmin(lam, axis=1)
        conv = lam[np.arange(ok.size), j] >= -lam_tol
        enter, j = ok[~conv], j[~conv]
        if table is None:
            _leave(M, i, out)
            _enter(M, enter, j, f[enter], G, sum_to_one)
            Minv[run] = M
        f[enter, j] = True
        A[run], free[run] = a, f
        run = run[np.isin(r, ok[conv], invert=True)]
    return A


def _leave(M: np.ndarray, rows: np.ndarray, j: np.ndarray) -> None:
    """Variable ``j[k]`` leaves the free set of pixel ``rows[k]``: in place,
    ``M ← M − M[:, j] M[j, :] / M[j, j]`` (inverse of the reduced KKT
    matrix), then row and column j become the identity's."""
    if rows.size == 0:
        return
    k = np.arange(rows.size)
    Mr = M[rows]
    col, row, piv = Mr[k, :, j], Mr[k, j, :], Mr[k, j, j]
    Mr -= col[:, :, None] * row[:, None, :] / piv[:, None, None]
    Mr[k, j, :] = 0.0
    Mr[k, :, j] = 0.0
    Mr[k, j, j] = 1.0
    M[rows] = Mr


def _enter(M, rows, j, f, G, sum_to_one) -> None:
    """Variable ``j[k]`` joins the free set ``f[k]`` of pixel ``rows[k]``:
    bordered-inverse update with ``u = M c``, ``s = G_jj − cᵀu`` where c is
    the new KKT column restricted to the old free set (and the ν row)."""
    if rows.size == 0:
        return
    k = np.arange(rows.size)
    c = np.concatenate([G[j] * f, np.full((rows.size, 1), float(sum_to_one))], axis=1)
    Mr = M[rows]
    u = np.einsum("mij,mj->mi", Mr, c)
    s = G[j, j] - np.sum(c * u, axis=1)
    Mr += u[:, :, None] * u[:, None, :] / s[:, None, None]
    Mr[k, j, :] = -u / s[:, None]
    Mr[k, :, j] = -u / s[:, None]
    Mr[k, j, j] = 1.0 / s
    M[rows] = Mr


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
        method: ``"auto"`` (enumeration for P ≤ ``ENUMERATE_MAX_P``, else
            active set),
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


