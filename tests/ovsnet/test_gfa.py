"""GFA (the OVSNet paper, eq. 1-4): the closed form is the limit of the random walk, and it learns nothing."""
import pytest
import torch

from ovss.ovsnet.gfa import affinity, convergence_bound, gfa, gfa_iterative, normalize

# a hand-made case: 2 queries, 2-d embeddings
F_Q = torch.tensor([[1.0, 0.0], [0.6, 0.8]], dtype=torch.float64)
F_C = torch.tensor([[0.8, 0.6], [0.0, 1.0]], dtype=torch.float64)
W, LAM = 0.5, 0.2


def test_affinity_and_norm_by_hand():
    z = affinity(F_Q, F_C, LAM)
    # Z_ij = lam <F_C_i, F_Q_j>
    expected = LAM * torch.tensor([[0.8, 0.48 + 0.48], [0.0, 0.8]], dtype=torch.float64)
    assert torch.allclose(z, expected)
    n = normalize(z)
    assert torch.allclose(n.sum(dim=0), torch.ones(2, dtype=torch.float64))  # each query's weights over CLIP sum to 1
    assert torch.allclose(n[:, 0], torch.softmax(expected[:, 0], dim=0))


def test_closed_form_by_hand():
    z = LAM * F_C @ F_Q.T
    a = z @ torch.softmax(z, dim=0).T
    f_c = (1 - W) * torch.linalg.inv(torch.eye(2, dtype=torch.float64) - W * W * a) @ (W * z @ F_Q + F_C)
    f_q = W * torch.softmax(z, dim=0).T @ f_c + (1 - W) * F_Q
    q, c = gfa(F_Q, F_C, W, LAM)
    assert torch.allclose(c, f_c) and torch.allclose(q, f_q)


def test_iteration_converges_to_the_closed_form():
    q_inf, c_inf = gfa(F_Q, F_C, W, LAM)
    errors = []
    for steps in (1, 2, 4, 8, 16, 32):
        q_t, c_t = gfa_iterative(F_Q, F_C, steps, W, LAM)
        errors.append(float((c_t - c_inf).abs().max()))
    assert all(b < a or b < 1e-15 for a, b in zip(errors, errors[1:]))  # monotone down to float64 precision
    assert errors[-1] < 1e-12
    q_t, c_t = gfa_iterative(F_Q, F_C, 60, W, LAM)
    assert torch.allclose(q_t, q_inf, atol=1e-12) and torch.allclose(c_t, c_inf, atol=1e-12)


def test_iteration_equals_the_series_of_eq3():
    z = affinity(F_Q, F_C, LAM)
    m = W * W * z @ normalize(z).T
    b = W * z @ F_Q + F_C
    t = 5
    series = torch.linalg.matrix_power(m, t) @ F_C + (1 - W) * sum(torch.linalg.matrix_power(m, i) @ b for i in range(t))
    assert torch.allclose(gfa_iterative(F_Q, F_C, t, W, LAM)[1], series)


def test_batched_shapes_and_dtype():
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(3, 16, 32), dim=-1)
    c = torch.nn.functional.normalize(torch.randn(3, 16, 32), dim=-1)
    q2, c2 = gfa(q, c)
    assert q2.shape == q.shape and c2.shape == c.shape and q2.dtype == q.dtype
    for i in range(3):  # every image aggregates on its own
        qi, ci = gfa(q[i], c[i])
        assert torch.allclose(q2[i], qi, atol=1e-5) and torch.allclose(c2[i], ci, atol=1e-5)
    assert convergence_bound(16) == pytest.approx(0.25 * 0.2 * 16) and convergence_bound(16) < 1
    iq, ic = gfa_iterative(q.double(), c.double(), 80)
    assert torch.allclose(ic.float(), c2, atol=1e-4)  # unit-norm features under the bound converge


def test_gradient_free_the_walk_weights_are_constants():
    torch.manual_seed(1)
    q = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    c = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    r = torch.randn(4, 3, dtype=torch.float64)
    q_out, c_out = gfa(q, c, W, LAM)
    gq, gc = torch.autograd.grad(((q_out + c_out) * r).sum(), (q, c))
    # the same map with Z and A built from detached copies: a fixed linear map of (F_Q, F_C)
    z = LAM * c.detach() @ q.detach().T
    norm_t = torch.softmax(z, dim=0).T
    inv = torch.linalg.inv(torch.eye(4, dtype=torch.float64) - W * W * z @ norm_t)
    c_lin = (1 - W) * inv @ (W * z @ q + c)
    q_lin = W * norm_t @ c_lin + (1 - W) * q
    hq, hc = torch.autograd.grad(((q_lin + c_lin) * r).sum(), (q, c))
    assert torch.allclose(gq, hq) and torch.allclose(gc, hc)
    # letting gradients through the affinity changes them: the detach is what makes it gradient-free
    q_out, c_out = gfa(q, c, W, LAM, detach_affinity=False)
    fq, _ = torch.autograd.grad(((q_out + c_out) * r).sum(), (q, c))
    assert not torch.allclose(fq, gq)


def test_no_grad_and_bad_arguments():
    with torch.no_grad():
        q, c = gfa(F_Q, F_C)
    assert not q.requires_grad
    with pytest.raises(ValueError, match="w must lie in"):
        gfa(F_Q, F_C, w=1.0)
    with pytest.raises(ValueError, match="same shape"):
        gfa(F_Q, F_C[:1])
