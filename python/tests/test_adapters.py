"""The JAX (jax.custom_vjp) and PyTorch (torch.autograd.Function) adapters:
gradients equal anagrad's exact ones and finite differences, they compose
with the frameworks' own autodiff, and a small network trained through them
on a blobs toy lowers the expected CLs."""

import numpy as np
import pytest

import anagrad
from anagrad import grad
import toy


@pytest.fixture(scope="module")
def neos_like():
    m = toy.model()
    base = [np.array([2.0, 4.0, 6.0, 8.0]), np.array([40.0, 30.0, 20.0, 10.0]),
            np.array([44.0, 33.0, 21.0, 10.5]), np.array([36.0, 27.0, 19.0, 9.5])]
    return m, base


# ----------------------------------------------------------------- JAX


def _jax():
    return pytest.importorskip("jax")


def test_jax_matches_exact_gradient(neos_like):
    jax = _jax()
    import jax.numpy as jnp
    import anagrad.jax as ajax

    m, base = neos_like
    f = ajax.cls(m, toy.keys(), test_mu=1.0, floor=1e-3)
    args = [jnp.asarray(b, dtype=jnp.float32) for b in base]
    v, gs = jax.value_and_grad(lambda *a: f(*a), argnums=(0, 1, 2, 3))(*args)
    ref = grad.cls(m, dict(zip(toy.keys(), base)), wrt=toy.keys(), floor=1e-3)
    assert float(v) == pytest.approx(ref.value, rel=1e-6)
    for g, k in zip(gs, toy.keys()):
        assert np.asarray(g) == pytest.approx(ref.grad[k].astype(np.float32), rel=1e-5, abs=1e-9)
    # under jit, with a chain rule in front
    h = jax.jit(jax.grad(lambda s: f(2.0 * s, *args[1:])))
    g = h(args[0] / 2.0)
    assert np.asarray(g) == pytest.approx(2.0 * ref.grad[toy.keys()[0]], rel=1e-5)


def test_jax_check_grads_float64(neos_like):
    jax = _jax()
    import jax.numpy as jnp
    from jax.test_util import check_grads
    import anagrad.jax as ajax

    m, base = neos_like
    with jax.enable_x64(True):
        f = ajax.cls(m, toy.keys(), test_mu=1.0)
        args = tuple(jnp.asarray(b, dtype=jnp.float64) for b in base)
        check_grads(f, args, order=1, modes=["rev"], eps=1e-4, atol=1e-6, rtol=1e-5)


# ----------------------------------------------------------------- torch
def _torch():
    return pytest.importorskip("torch")


def test_torch_gradcheck(neos_like):
    torch = _torch()
    import anagrad.torch as atorch

    m, base = neos_like
    f = atorch.cls(m, toy.keys(), test_mu=1.0)
    ts = tuple(torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in base)
    assert torch.autograd.gradcheck(f, ts, eps=1e-5, atol=1e-7, rtol=1e-4)
    loss = f(*ts)
    loss.backward()
    ref = grad.cls(m, dict(zip(toy.keys(), base)), wrt=toy.keys())
    for t, k in zip(ts, toy.keys()):
        np.testing.assert_allclose(t.grad.numpy(), ref.grad[k], rtol=1e-12)
    # no grad requested: value only
    with torch.no_grad():
        assert float(f(*[t.detach() for t in ts])) == pytest.approx(ref.value, rel=1e-12)


# ----------------------------------------------------------------- training loops
def test_jax_training_lowers_cls():
    jax = _jax()
    import jax.numpy as jnp
    from jax.scipy.stats import norm
    import anagrad.jax as ajax

    data = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in toy.samples().items()}
    f = ajax.cls(toy.model(), toy.keys(), test_mu=1.0, floor=1e-3)
    key = jax.random.PRNGKey(0)
    k1, k2 = jax.random.split(key)
    params = {
        "w1": 0.5 * jax.random.normal(k1, (2, 16)), "b1": jnp.zeros(16),
        "w2": 0.5 * jax.random.normal(k2, (16, 1)), "b2": jnp.zeros(1),
    }
    edges = jnp.asarray(toy.EDGES, dtype=jnp.float32)

    def hist(p, x, w):
        s = jax.nn.sigmoid(jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"])[:, 0]
        cdf = norm.cdf((edges[None, :] - s[:, None]) / toy.BANDWIDTH)
        return w * jnp.sum(cdf[:, 1:] - cdf[:, :-1], axis=0)

    def loss(p):
        hs = [hist(p, data[k], toy.weight(k, data[k].shape[0]))
              for k in ("signal", "bkg", "bkg_up", "bkg_down")]
        return f(*hs)

    vg = jax.value_and_grad(loss)
    lr, history = 0.05, []
    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)
    for t in range(1, 31):
        val, g = vg(params)
        history.append(float(val))
        m = jax.tree_util.tree_map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
        params = jax.tree_util.tree_map(
            lambda p, a, b: p - lr * (a / (1 - 0.9 ** t)) / (jnp.sqrt(b / (1 - 0.999 ** t)) + 1e-8),
            params, m, v,
        )
    assert np.all(np.isfinite(history))
    assert min(history[-5:]) < 0.5 * history[0], history


def test_torch_training_lowers_cls():
    torch = _torch()
    import anagrad.torch as atorch

    torch.manual_seed(0)
    data = {k: torch.tensor(v, dtype=torch.float32) for k, v in toy.samples().items()}
    f = atorch.cls(toy.model(), toy.keys(), test_mu=1.0, floor=1e-3)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1),
                              torch.nn.Sigmoid())
    edges = torch.tensor(toy.EDGES, dtype=torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)

    def hist(x, w):
        s = net(x)[:, 0]
        cdf = torch.special.ndtr((edges[None, :] - s[:, None]) / toy.BANDWIDTH)
        return w * (cdf[:, 1:] - cdf[:, :-1]).sum(0)

    history = []
    for _ in range(30):
        opt.zero_grad()
        hs = [hist(data[k], toy.weight(k, data[k].shape[0]))
              for k in ("signal", "bkg", "bkg_up", "bkg_down")]
        loss = f(*hs)
        loss.backward()
        opt.step()
        history.append(loss.item())
    assert np.all(np.isfinite(history))
    assert min(history[-5:]) < 0.5 * history[0], history
