"""Gradient-Free Aggregation (GFA, the OVSNet paper, eq. 1-4): fuse query embeddings with pooled CLIP features.

The N query embeddings F_Q (decoder, fitted to the training classes) and the N mask-pooled CLIP
features F_C (general, but image-level) of one image are two sets of nodes; a random walk between
them mixes the two without any learned weight, so the fusion cannot learn to rely on the queries
alone. With Z = lam F_C F_Q^T (N x N) and Norm(Z) its softmax over the CLIP axis (so
Norm(Z)^T F_C gives each query a convex combination of CLIP features), one step is

    F_Q^t = w Norm(Z)^T F_C^{t-1} + (1 - w) F_Q^0                          (1)
    F_C^t = w Z F_Q^t + (1 - w) F_C^0                                       (2)

and its limit, with A = Z Norm(Z)^T, is

    F_C = (1 - w) (I - w^2 A)^-1 (w Z F_Q^0 + F_C^0)                        (4)

after which (1) gives F_Q. The Neumann series behind (4) converges when the spectral radius of
w^2 A is below 1; for unit-norm features |Z_ij| <= lam and rows of Norm(Z)^T sum to 1, so
w^2 lam N < 1 guarantees it (``convergence_bound``). "Gradient-free": no parameters, and the walk's
weights (Z, A) are constants to autograd, so gradients reach F_Q and F_C only through the fixed
linear map, never by reshaping the affinity.
"""
from __future__ import annotations

import torch

DEFAULT_W = 0.5  # not given in the OVSNet paper; with lam 0.2 it guarantees convergence up to 19 unit-norm queries
DEFAULT_LAM = 0.2  # the OVSNet paper's lambda


def affinity(f_q: torch.Tensor, f_c: torch.Tensor, lam: float = DEFAULT_LAM) -> torch.Tensor:
    """Z = lam F_C F_Q^T: (..., N_c, N_q) scaled dot products."""
    return lam * f_c @ f_q.transpose(-1, -2)


def normalize(z: torch.Tensor) -> torch.Tensor:
    """Norm(Z): softmax over the CLIP axis, so each query's weights over CLIP features sum to 1."""
    return z.softmax(dim=-2)


def convergence_bound(n: int, w: float = DEFAULT_W, lam: float = DEFAULT_LAM) -> float:
    """w^2 lam N: below 1, the iteration converges for unit-norm features of N queries."""
    return w * w * lam * n


def gfa(f_q: torch.Tensor, f_c: torch.Tensor, w: float = DEFAULT_W, lam: float = DEFAULT_LAM,
        detach_affinity: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The closed form (4): aggregated (F_Q, F_C) for F_Q, F_C of shape (..., N, E).

    ``detach_affinity=False`` lets gradients flow through Z as well (for comparison only).
    """
    if not 0.0 < w < 1.0:
        raise ValueError(f"GFA's w must lie in (0, 1), got {w}")
    if f_q.shape != f_c.shape:
        raise ValueError(f"F_Q {tuple(f_q.shape)} and F_C {tuple(f_c.shape)} must have the same shape")
    dtype = f_q.dtype
    work = torch.promote_types(dtype, torch.float32)  # the solve wants at least float32 (half inputs, autocast)
    f_q0, f_c0 = f_q.to(work), f_c.to(work)
    with torch.set_grad_enabled(torch.is_grad_enabled() and not detach_affinity):
        z = affinity(f_q0.detach() if detach_affinity else f_q0, f_c0.detach() if detach_affinity else f_c0, lam)
        norm_t = normalize(z).transpose(-1, -2)
        a = z @ norm_t
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        system = eye - (w * w) * a
    f_c_inf = (1.0 - w) * torch.linalg.solve(system, w * z @ f_q0 + f_c0)
    f_q_inf = w * norm_t @ f_c_inf + (1.0 - w) * f_q0
    return f_q_inf.to(dtype), f_c_inf.to(dtype)


def gfa_iterative(f_q: torch.Tensor, f_c: torch.Tensor, steps: int, w: float = DEFAULT_W,
                  lam: float = DEFAULT_LAM) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` rounds of (1) and (2) from F_C^0: the definition that (4) is the limit of."""
    z = affinity(f_q, f_c, lam)
    norm_t = normalize(z).transpose(-1, -2)
    q_t, c_t = f_q, f_c
    for _ in range(steps):
        q_t = w * norm_t @ c_t + (1.0 - w) * f_q
        c_t = w * z @ q_t + (1.0 - w) * f_c
    return q_t, c_t
