"""Every API function against pyhf 0.7.6 on the 34 shipped workspaces
(tests/fixtures/pyhf: layouts, log-likelihoods, expected data, fits,
hypothesis tests, significance and upper limits computed by pyhf with
precise fits), at the tolerances of the Rust tests (tests/infer_pyhf.rs):
twice_nll 1e-9 rel, best-fit parameters 1e-5 abs, uncertainties 1e-4 rel,
CLs / p0 1e-5 rel, upper limits 1e-4 rel."""

import numpy as np
import pytest

import anagrad
from conftest import FIXTURES, load

REFS = sorted((FIXTURES / "pyhf" / "refs").glob("*.json"))


def model_of(ref):
    ws = anagrad.Workspace(load(FIXTURES / "pyhf" / ref["workspace"]))
    patches = [load(FIXTURES / "pyhf" / p) for p in ref["patches"]]
    model = ws.model(
        measurement_name=ref["measurement"],
        modifier_settings={
            "normsys": {"interpcode": ref["normsys_interp"]},
            "histosys": {"interpcode": ref["histosys_interp"]},
        },
        patches=patches,
    )
    if patches:
        for k, p in enumerate(patches):
            ws = ws.patched(p)
    return ws, model


def kink_ambiguous(ref):
    """As tests/infer_pyhf.rs: with piecewise interpolation (normsys code1,
    histosys code0) a best fit exactly at a kink (alpha = 0) makes the Hessian
    one-sided there and the other parameters' uncertainties depend on the side
    pyhf's autodiff took; then only the kink parameters are compared."""
    if ref["normsys_interp"] != "code1" and ref["histosys_interp"] != "code0":
        return []
    return [
        i for i, (lo, hi) in enumerate(ref["bounds"])
        if ref["init"][i] == 0.0 and lo < 0 < hi and not ref["fixed"][i]
        and abs(ref["mle"]["pars"][i]) < 1e-9
    ]


def close(got, want, rtol, what, atol=0.0):
    got, want = np.asarray(got, float), np.asarray(want, float)
    ok = np.abs(got - want) <= rtol * np.abs(want) + atol
    assert ok.all(), f"{what}: got {got}, pyhf {want}"


@pytest.mark.parametrize("path", REFS, ids=[p.stem for p in REFS])
def test_layout_logpdf_expected_data(path):
    ref = load(path)
    ws, model = model_of(ref)
    c = model.config
    assert c.par_names == ref["par_names"]
    assert c.par_order == [p["name"] for p in ref["par_sets"]]
    for p in ref["par_sets"]:
        assert c.par_slice(p["name"]) == slice(p["offset"], p["offset"] + p["size"])
    assert c.poi_name == ref["poi"]
    assert c.poi_index == c.par_slice(ref["poi"]).start
    assert c.suggested_init() == pytest.approx(ref["init"], rel=1e-15)
    assert c.suggested_bounds() == [pytest.approx(b) for b in ref["bounds"]]
    assert c.suggested_fixed() == ref["fixed"]
    assert c.nmaindata == ref["n_main"]
    data = ws.data(model)
    close(data, ref["observed_data"], 1e-14, "data")
    for pt in ref["nll_points"]:
        lp = model.logpdf(pt["pars"], data)
        assert lp.shape == (1,)
        close(-2 * lp[0], pt["twice_nll"], 3e-12, "twice_nll")
        close(model.expected_data(pt["pars"]), pt["expected_data"], 3e-12, "expected_data", 1e-300)


@pytest.mark.parametrize("path", REFS, ids=[p.stem for p in REFS])
def test_fits(path):
    ref = load(path)
    ws, model = model_of(ref)
    data = ws.data(model)
    mle = ref["mle"]
    pars, twice_nll = anagrad.infer.mle.fit(data, model, return_fitted_val=True)
    assert pars.shape == (model.config.npars,) and twice_nll.shape == ()
    close(twice_nll, mle["twice_nll"], 1e-9, "mle.twice_nll")
    close(pars, mle["pars"], 0.0, "mle.pars", atol=1e-5)
    if mle.get("uncertainties") is not None:
        pu = anagrad.infer.mle.fit(data, model, return_uncertainties=True)
        assert pu.shape == (model.config.npars, 2)
        idx = kink_ambiguous(ref) or list(range(model.config.npars))
        close(pu[idx, 1], np.asarray(mle["uncertainties"])[idx], 1e-4, "mle.uncertainties",
              atol=1e-12)
    fp = ref["fixed_poi_fit"]
    pars, twice_nll = anagrad.infer.mle.fixed_poi_fit(
        fp["poi_value"], data, model, return_fitted_val=True
    )
    close(twice_nll, fp["twice_nll"], 1e-9, "fixed_poi_fit.twice_nll")
    close(pars, fp["pars"], 0.0, "fixed_poi_fit.pars", atol=1e-5)


@pytest.mark.parametrize("path", REFS, ids=[p.stem for p in REFS])
def test_hypotest_significance_limits(path):
    ref = load(path)
    ws, model = model_of(ref)
    data = ws.data(model)
    for stat, h in ref["hypotest"].items():
        obs, tails, band = anagrad.infer.hypotest(
            h["poi_value"], data, model, test_stat=stat,
            return_tail_probs=True, return_expected_set=True,
        )
        assert obs.shape == () and len(tails) == 2 and len(band) == 5
        tiny = 1e-300
        close(obs, h["CLs_obs"], 1e-5, f"{stat}.CLs_obs", tiny)
        close(band, h["CLs_exp"], 1e-5, f"{stat}.CLs_exp", tiny)
        close(tails, [h["CLsb_obs"], h["CLb_obs"]], 1e-5, f"{stat}.tails", tiny)
    s = ref.get("significance")
    if s is not None:
        p0, band = anagrad.infer.hypotest(0.0, data, model, test_stat="q0", return_expected_set=True)
        close(p0, s["p0_obs"], 1e-5, "p0_obs", 1e-300)
        close(band, s["p0_exp"], 1e-5, "p0_exp", 1e-300)
        sig = anagrad.infer.significance(data, model)
        close(sig["Z_obs"], s["Z_obs"], 1e-5, "Z_obs", 1e-6)
    ul = ref.get("upper_limit")
    if ul is not None:
        obs, exp = anagrad.infer.intervals.upper_limits.upper_limit(data, model)
        close(obs, ul["obs"], 1e-4, "limit.obs")
        close(exp, ul["exp"], 1e-4, "limit.exp")
