"""Numpy-free small-matrix kernels for the 6-state filter.

At this size NumPy's per-call overhead (about 1 us a call, a dozen calls per update)
costs more than the arithmetic, so the filter keeps its state as Python lists: ``x`` (6
floats) and ``P`` (6 rows of 6 floats) and uses these kernels (measured in
``sitebot bench localization``). The update whitens the measurement with the Cholesky
factor of R and fuses the rows one by one (sequential scalar updates of one linearisation:
the same posterior and the same NIS as the batch EKF update).
"""
from __future__ import annotations

import math

__all__ = ["predict", "update", "cholesky", "copy_matrix", "is_psd"]

Matrix = list  # list[list[float]]


def copy_matrix(P: Matrix) -> Matrix:
    return [row[:] for row in P]


def predict(P: Matrix, f: tuple, qdiag: list, dt: float) -> Matrix:
    """``F P F^T + Q dt`` for the sparse motion Jacobian ``F = I + f`` where
    ``f = (f02, f03, f04, f12, f13, f14, f24)`` (see models.motion)."""
    f02, f03, f04, f12, f13, f14, f24 = f
    p0, p1, p2, p3, p4, p5 = P
    # A = F P (rows 0..2 change)
    a0 = [p0[j] + f02 * p2[j] + f03 * p3[j] + f04 * p4[j] for j in range(6)]
    a1 = [p1[j] + f12 * p2[j] + f13 * p3[j] + f14 * p4[j] for j in range(6)]
    a2 = [p2[j] + f24 * p4[j] for j in range(6)]
    out = [a0, a1, a2, p3[:], p4[:], p5[:]]
    # B = A F^T (columns 0..2 change): B[i][0] = A[i][0] + f02 A[i][2] + f03 A[i][3] + ...
    for r in out:
        r2, r3, r4 = r[2], r[3], r[4]
        r[0] += f02 * r2 + f03 * r3 + f04 * r4
        r[1] += f12 * r2 + f13 * r3 + f14 * r4
        r[2] = r2 + f24 * r4
    for i in range(6):
        out[i][i] += qdiag[i] * dt
    # exact symmetry (rounding)
    for i in range(6):
        ri = out[i]
        for j in range(i + 1, 6):
            v = 0.5 * (ri[j] + out[j][i])
            ri[j] = out[j][i] = v
    return out


def cholesky(R: Matrix) -> Matrix | None:
    """Lower Cholesky factor of a small symmetric matrix, or None if not positive definite."""
    n = len(R)
    L = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = R[i][j] - sum(L[i][k] * L[j][k] for k in range(j))
            if i == j:
                if not s > 0.0:
                    return None
                L[i][i] = math.sqrt(s)
            else:
                L[i][j] = s / L[j][j]
    return L


def is_psd(R: Matrix, tol: float = 1e-12) -> bool:
    """Positive semi-definite (small matrices): Cholesky of R + tol * scale * I."""
    n = len(R)
    scale = max(1.0, max(abs(v) for row in R for v in row))
    return cholesky([[R[i][j] + (tol * scale if i == j else 0.0) for j in range(n)]
                     for i in range(n)]) is not None


def update(x: list, P: Matrix, y: list, H: list, R: Matrix, gate2: float
           ) -> tuple[list | None, Matrix | None, float]:
    """EKF update with innovation ``y`` (m), Jacobian rows ``H`` (m x 6), noise ``R``.

    Returns (x', P', NIS); x' and P' are None when NIS exceeds ``gate2`` (> 0), when R is
    not positive definite, or on a numerical failure (a non-positive variance).
    """
    m = len(y)
    diagonal = all(R[i][j] == 0.0 for i in range(m) for j in range(m) if i != j)
    if diagonal:
        ys, Hs = [], []
        for i in range(m):
            r = R[i][i]
            if not r > 0.0:
                return None, None, math.nan
            k = 1.0 / math.sqrt(r)
            ys.append(y[i] * k)
            Hs.append([h * k for h in H[i]])
    else:
        L = cholesky(R)
        if L is None:
            return None, None, math.nan
        ys, Hs = [], []
        for i in range(m):           # forward substitution: L ys = y, L Hs = H
            li = L[i]
            yi = y[i] - sum(li[k] * ys[k] for k in range(i))
            hi = [H[i][c] - sum(li[k] * Hs[k][c] for k in range(i)) for c in range(6)]
            ys.append(yi / li[i])
            Hs.append([h / li[i] for h in hi])
    x1 = list(x)
    P1 = copy_matrix(P)
    nis = 0.0
    for i in range(m):
        h = Hs[i]
        nz = [c for c in range(6) if h[c] != 0.0]
        # innovation of this row against the state updated so far (one linearisation)
        yi = ys[i] - sum(h[c] * (x1[c] - x[c]) for c in nz)
        pht = [sum(P1[r][c] * h[c] for c in nz) for r in range(6)]
        s = sum(h[c] * pht[c] for c in nz) + 1.0
        if not s > 0.0:
            return None, None, math.nan
        nis += yi * yi / s
        inv = 1.0 / s
        k = [v * inv for v in pht]
        for r in range(6):
            x1[r] += k[r] * yi
            kr = k[r]
            row = P1[r]
            for c in range(r, 6):
                v = row[c] - kr * pht[c]
                row[c] = v
                P1[c][r] = v
    if gate2 > 0.0 and nis > gate2:
        return None, None, nis
    for i in range(6):
        if not P1[i][i] > 0.0:
            return None, None, nis
    return x1, P1, nis
