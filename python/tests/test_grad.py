"""anagrad.grad: values and exact gradients w.r.t. template inputs, against
the Rust tests' reference (tests/fixtures/neos: relaxed/JAX and
Richardson-extrapolated finite differences with refits) and against central
finite differences on the shipped example workspace."""

import numpy as np
import pytest

import anagrad
from anagrad import grad
from conftest import FIXTURES, REPO, load


@pytest.fixture(scope="module")
def neos():
    fx = load(FIXTURES / "neos" / "neos_ref.json")
    model = anagrad.Model(fx["pyhf_spec"], poi_name="mu")
    keys = [
        ("singlechannel", "signal", None, "nominal"),
        ("singlechannel", "background", None, "nominal"),
        ("singlechannel", "background", "correlated_bkg_uncertainty", "hi_data"),
        ("singlechannel", "background", "correlated_bkg_uncertainty", "lo_data"),
    ]
    yields = dict(zip(keys, [np.asarray(h) for h in fx["histograms"]]))
    return fx, model, keys, yields


@pytest.mark.parametrize(
    "name,fn,kw",
    [
        ("cls", grad.cls, dict(test_stat="q")),
        ("cls", grad.cls, dict(test_stat="qtilde")),
        ("p0", grad.p0, {}),
        ("sigma_mu", grad.sigma_mu, dict(hyp_mu=1.0)),
        ("sigma_mu_bonly", grad.sigma_mu, dict(hyp_mu=0.0)),
        ("generalised_variance", grad.generalised_variance, dict(hyp_mu=0.0)),
    ],
)
def test_neos_reference(neos, name, fn, kw):
    fx, model, keys, yields = neos
    q = fx["quantities"][name]
    r = fn(model, yields, wrt=keys, floor=1e-3, **kw)
    assert isinstance(r, grad.GradResult)
    assert r.value == pytest.approx(q["exact_value"], rel=1e-10)
    g = np.stack([r.grad[k] for k in keys])
    want = np.asarray(q["exact_grad"])
    fd = np.asarray(q["fd_grad"])
    norm = np.abs(fd).max()
    assert np.abs(g - want).max() / norm < 1e-9
    assert np.abs(g - fd).max() / norm < 1e-6


def test_keys_cover_every_template(example_ws):
    m = example_ws.model()
    keys = grad.input_keys(m)
    roles = {k[3] for k in keys}
    assert {"nominal", "hi_data", "lo_data", "hi", "lo", "uncertainty", "observed"} <= roles
    r = grad.cls(m, test_mu=1.0)
    assert set(r.grad) == set(keys)
    inputs = m.inputs()
    for k, v in inputs.items():
        assert r.grad[k].shape == v.shape
    for c in m.config.channels:
        assert r.grad[(c, None, None, "observed")].shape == (m.config.channel_nbins[c],)
    # expected CLs on nominal Asimov data does not depend on the observations
    assert all(np.all(r.grad[(c, None, None, "observed")] == 0) for c in m.config.channels)


def _fd_check(fn, model, keys, n_pick=10, seed=0, rtol=2e-5, **kw):
    """Central differences (relative step 1e-5) at randomly picked entries."""
    r = fn(model, wrt=keys, **kw)
    base = {k: np.asarray(v, dtype=float) for k, v in model.inputs().items()}
    ws_obs = None
    rng = np.random.default_rng(seed)
    entries = [(k, i) for k in keys for i in range(r.grad[k].size)]
    picks = [entries[j] for j in rng.choice(len(entries), size=min(n_pick, len(entries)), replace=False)]
    gmax = max(np.abs(g).max() for g in r.grad.values())
    for k, i in picks:
        if k[3] == "observed":
            cur = r.grad  # values of observed inputs: from the model's data
            obs = model._core.observed_data()
            sl = model.config.channel_slices[k[0]]
            x0 = obs[sl].copy()
        else:
            x0 = base[k].copy()
        h = 1e-5 * max(abs(x0[i]), 1e-2)
        vals = []
        for s in (+1, -1):
            x = x0.copy()
            x[i] += s * h
            vals.append(fn(model, {k: x}, wrt=[k], **kw).value)
        fd = (vals[0] - vals[1]) / (2 * h)
        assert abs(r.grad[k][i] - fd) <= rtol * gmax + 1e-7 * abs(fd), (k, i, r.grad[k][i], fd)
    return r


@pytest.mark.parametrize(
    "fn,kw",
    [
        (grad.cls, dict(test_mu=1.0)),
        (grad.cls, dict(test_mu=1.0, asimov="conditional_fit")),
        (grad.z0, {}),
        (grad.observed_cls, dict(test_mu=1.0)),
        (grad.observed_test_stat, dict(test_stat="qtilde", test_mu=1.0)),
        (grad.observed_nll, {}),
        (grad.sigma_mu, {}),
    ],
    ids=["cls", "cls_conditional", "z0", "observed_cls", "observed_qtilde", "observed_nll", "sigma_mu"],
)
def test_gradients_match_finite_differences(example_ws, fn, kw):
    m = example_ws.model()
    keys = grad.input_keys(m)
    _fd_check(fn, m, keys, **kw)


def test_value_matches_infer(example_ws):
    m = example_ws.model()
    data = example_ws.data(m)
    obs = anagrad.infer.hypotest(1.0, data, m)
    r = grad.observed_cls(m, test_mu=1.0, wrt=[("SR", "signal", None, "nominal")])
    assert r.value == pytest.approx(float(obs), rel=1e-9)
    pars, twice_nll = anagrad.infer.mle.fit(data, m, return_fitted_val=True)
    r = grad.observed_nll(m, wrt=[("SR", "signal", None, "nominal")])
    assert r.value == pytest.approx(float(twice_nll), rel=1e-12)


def test_objective_reuse_and_errors(example_ws):
    m = example_ws.model()
    key = ("SR", "signal", None, "nominal")
    obj = grad.Objective(m, "cls", [key], test_mu=1.0)
    (v0, g0) = obj()
    v1, g1 = obj([obj.current_values()[0] * 2])
    assert v1 < v0  # more signal: lower CLs
    assert g0[0].shape == (4,)
    with pytest.raises(anagrad.exceptions.InvalidInput, match="model's inputs"):
        grad.Objective(m, "cls", [("SR", "nope", None, "nominal")])
    with pytest.raises(anagrad.exceptions.InvalidInput, match="needs 4 values"):
        obj([np.ones(3)])


def test_z_asimov():
    s, b = np.array([3.0, 5.0]), np.array([10.0, 20.0])
    r = grad.z_asimov(s, b)
    z = np.sqrt(np.sum(2 * ((s + b) * np.log(1 + s / b) - s)))
    assert r.value == pytest.approx(z, rel=1e-12)
    h = 1e-6
    for i in range(2):
        e = np.zeros(2)
        e[i] = h
        fd = (grad.z_asimov(s + e, b).value - grad.z_asimov(s - e, b).value) / (2 * h)
        assert r.grad["s"][i] == pytest.approx(fd, rel=1e-6)
    ru = grad.z_asimov(s, b, sigma=0.1 * b)
    assert ru.value < r.value and set(ru.grad) == {"s", "b", "sigma"}
