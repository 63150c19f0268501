"""Toy-based hypothesis tests: ``anagrad.infer.hypotest(calctype="toybased")``
and ``anagrad.infer.toys``.

* pyhf's return shapes; CLs and the expected band recomputed from the
  returned distributions with pyhf's formulas (``ToyCalculator.pvalues`` /
  ``expected_pvalues``: ``#(t >= t_obs)/N``, numpy percentiles);
* shards (pickled, merged in any order, also the CLI's one-based ``"K/N"``)
  equal the unsharded ensemble bit for bit; JSON round trip; thread count;
* the distributions agree with pyhf 0.7.6's ToyCalculator
  (``tests/fixtures/toys``, 2000 toys per hypothesis, written by pyhf) within
  the two ensembles' statistical errors: two-sample KS per hypothesis, CLs+b,
  CLb, CLs and the band within 4 standard errors (the tolerances of
  ``tests/toys_pyhf.rs``);
* bad input raises with a clear message.

(The Dask toy scan is in test_scan.py, next to the asymptotic one.)
"""

import pickle
import random

import numpy as np
import pytest

import anagrad
from anagrad import exceptions
from anagrad.infer import toys
from conftest import FIXTURES, load

TOYS = FIXTURES / "toys"
PERCENTILES = [2.27501319, 15.86552539, 50.0, 84.13447461, 97.72498681]


@pytest.fixture(scope="module")
def shapesys():
    """pyhf's docs model (tests/cli_toys.rs uses it too): 2 bins, shapesys, n = 51, 48."""
    m = anagrad.simplemodels.uncorrelated_background([12.0, 11.0], [50.0, 52.0], [3.0, 7.0])
    return m, np.asarray([51.0, 48.0] + m.config.auxdata)


def fixture(name):
    f = load(TOYS / f"{name}.json")
    ws = anagrad.Workspace(f["workspace"])
    m = ws.model()
    return f, m, np.asarray(ws.data(m))


def same_toys(a, b):
    """The same ensemble, bit for bit: everything but the shard bookkeeping
    (``shards``: which parts were merged)."""
    if (a.poi_test, a.test_stat, a.seed, a.ntoys, a.observed) != \
            (b.poi_test, b.test_stat, b.seed, b.ntoys, b.observed):
        return False
    for key in ("signal_plus_background", "background"):
        x, y = getattr(a, key), getattr(b, key)
        if x.keys() != y.keys():
            return False
        for k in x:
            if k in ("generating_pars", "values"):
                if not np.array_equal(x[k], y[k], equal_nan=True):
                    return False
            elif x[k] != y[k]:
                return False
    return True


def pyhf_pvalues(sb, b, t):
    """pyhf's ToyCalculator.pvalues: EmpiricalDistribution.pvalue = #(x >= t)/N."""
    clsb = np.sum(sb >= t) / sb.size
    clb = np.sum(b >= t) / b.size
    return clsb, clb, clsb / clb


def pyhf_band(sb, b, q0=False):
    """pyhf's ToyCalculator.expected_pvalues (its hypotest takes CLs+b's band for q0)."""
    pv = np.array([pyhf_pvalues(sb, b, t) for t in b])
    band = np.percentile(pv, PERCENTILES, axis=0).T
    return band[0] if q0 else band[2]


def test_hypotest_shapes_and_semantics(shapesys):
    m, data = shapesys
    kw = dict(calctype="toybased", ntoys=300, seed=9)
    obs, tails, exp, band = anagrad.infer.hypotest(
        1.0, data, m, return_tail_probs=True, return_expected=True, return_expected_set=True,
        **kw,
    )
    a_obs, a_tails, a_exp, a_band = anagrad.infer.hypotest(
        1.0, data, m, return_tail_probs=True, return_expected=True, return_expected_set=True,
    )
    # the asymptotic call's (and pyhf's) shapes and types
    for x, y in [(obs, a_obs), (exp, a_exp)]:
        assert isinstance(x, np.ndarray) and x.shape == () == y.shape
    assert len(tails) == len(a_tails) == 2 and len(band) == len(a_band) == 5
    assert all(isinstance(x, np.ndarray) and x.shape == () for x in [*tails, *band])
    assert float(exp) == float(band[2])
    assert float(anagrad.infer.hypotest(1.0, data, m, **kw)) == float(obs)

    d = toys.distributions(1.0, data, m, ntoys=300, seed=9)
    assert (d.poi_test, d.test_stat, d.seed, d.ntoys, d.shards) == (1.0, "qtilde", 9, 300, [(0, 1)])
    assert d.is_complete()
    sb, b = d.signal_plus_background, d.background
    assert sb["generating_poi"] == 1.0 and b["generating_poi"] == 0.0
    assert sb["indices"] == list(range(300)) and not sb["failures"] and not b["failures"]
    # the generating points are the conditional fits to the observed data
    for hyp, mu in ((sb, 1.0), (b, 0.0)):
        fit = anagrad.infer.mle.fixed_poi_fit(mu, data, m)
        np.testing.assert_allclose(hyp["generating_pars"], fit, rtol=0, atol=1e-9)
    r = d.result()
    assert r["ntoys"] == (300, 300) and r["failed"] == (0, 0)
    assert r["teststat"] == d.observed
    clsb, clb, cls = pyhf_pvalues(sb["values"], b["values"], d.observed)
    assert (float(tails[0]), float(tails[1]), float(obs)) == (clsb, clb, cls)
    assert (r["CLsb_obs"], r["CLb_obs"], r["CLs_obs"]) == (clsb, clb, cls)
    np.testing.assert_allclose([float(x) for x in band], pyhf_band(sb["values"], b["values"]),
                               rtol=1e-13, atol=1e-15)
    # the observed statistic is the asymptotic calculator's
    asym = anagrad.infer.hypotest_scan([1.0], data, m)[0]
    assert d.observed == pytest.approx(asym["qmu"], rel=1e-12, abs=1e-12)
    # toys.result: pyhf's tuple from distributions
    got = toys.result(d, return_tail_probs=True, return_expected_set=True)
    assert float(got[0]) == float(obs) and [float(x) for x in got[2]] == [float(x) for x in band]


def test_shards_merge_to_the_unsharded_ensemble(shapesys):
    m, data = shapesys
    kw = dict(ntoys=150, seed=3)
    full = toys.distributions(1.0, data, m, **kw)
    parts = [toys.distributions(1.0, data, m, shard=(k, 4), **kw) for k in range(4)]
    assert [len(p.background["indices"]) for p in parts] == [38, 38, 37, 37]
    assert parts[1].background["indices"][:3] == [1, 5, 9] and not parts[1].is_complete()
    # as Dask moves them: pickled, and merged in any order
    moved = [pickle.loads(pickle.dumps(p)) for p in parts]
    assert moved == parts
    random.Random(1).shuffle(moved)
    merged = toys.merge(moved)
    assert same_toys(merged, full) and merged.shards == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert merged != full  # (== also compares the shards held)
    rm, rf = merged.result(), full.result()
    assert rm.keys() == rf.keys()
    for k in rf:
        assert np.array_equal(rm[k], rf[k]), k
    # a merge of merges; the CLI's one-based K/N; the CLI's JSON
    assert toys.merge([toys.merge(parts[:2], complete=False),
                       toys.merge(parts[2:], complete=False)]) == merged
    assert toys.distributions(1.0, data, m, shard="2/4", **kw) == parts[1]
    assert toys.ToyDistributions.from_json(full.to_json()) == full
    # independent of the Rust thread count
    assert toys.distributions(1.0, data, m, threads=1, **kw) == \
        toys.distributions(1.0, data, m, threads=2, **kw)
    # the hypotest call is the unsharded ensemble's result
    obs, band = anagrad.infer.hypotest(1.0, data, m, calctype="toybased",
                                       return_expected_set=True, **kw)
    assert float(obs) == rf["CLs_obs"] and [float(x) for x in band] == list(rf["CLs_exp"])
    # another seed gives other toys
    assert toys.distributions(1.0, data, m, ntoys=150, seed=4) != full
    # a partial merge only on request
    with pytest.raises(exceptions.InvalidInput, match=r"\(1/4, 2/4\) cover 76 of 150 toys"):
        toys.merge(parts[:2])
    assert toys.merge(parts[:2], complete=False).result()["ntoys"] == (76, 76)


@pytest.mark.parametrize("name,seed", [
    ("onebin_lowcount", 101), ("onebin_lowcount_q0", 102), ("shapesys", 103),
    ("histosys", 104), ("twochannel", 105),
])
def test_agrees_with_pyhf_toycalculator(name, seed):
    """Our own toys vs pyhf's, 2000 per hypothesis each (the seeds of
    tests/toys_pyhf.rs: the same toys as there): the same distributions and
    p-values within the ensembles' statistical errors."""
    stats = pytest.importorskip("scipy.stats")
    f, m, data = fixture(name)
    q0 = f["test_stat"] == "q0"
    n = 2000
    d = toys.distributions(f["poi_test"], data, m, test_stat=f["test_stat"], ntoys=n, seed=seed)
    r = d.result()
    assert r["failed"] == (0, 0)
    assert d.observed == pytest.approx(f["teststat"], rel=1e-4, abs=1e-4)
    for key in ("signal_plus_background", "background"):
        np.testing.assert_allclose(getattr(d, key)["generating_pars"],
                                   f["generating_pars"][key], atol=2e-3)
        # rounded to 1e-4: pyhf's SLSQP fits are converged to ~1e-6 in q, and ties
        # (q = 0, discrete data) must stay ties; that only makes KS conservative
        ours = np.round(getattr(d, key)["values"], 4)
        theirs = np.round(np.asarray(f[key]), 4)
        p = stats.ks_2samp(ours, theirs).pvalue
        assert p > 0.01, f"{name} {key}: KS p = {p}"

    npy = f["ntoys"]

    def var(p, k):
        return max(p * (1 - p) / k, 1.0 / k**2)

    def close(ours, theirs, sd, what):
        tol = 4 * sd + 1.0 / n
        assert abs(ours - theirs) <= tol, f"{name}: {what} {ours} vs pyhf {theirs} (tol {tol})"

    for key in ("CLsb_obs", "CLb_obs"):
        p = max(r[key], f[key])
        close(r[key], f[key], np.sqrt(var(p, n) + var(p, npy)), key)
    if q0:
        sd_cls = np.sqrt(var(max(r["CLsb_obs"], f["CLsb_obs"]), n) + var(f["CLsb_obs"], npy))
    else:
        psb, pb = 0.5 * (r["CLsb_obs"] + f["CLsb_obs"]), 0.5 * (r["CLb_obs"] + f["CLb_obs"])
        cls_mid = 0.5 * (r["CLs_obs"] + f["CLs_obs"])
        sd_cls = cls_mid * np.sqrt((var(psb, n) + var(psb, npy)) / max(psb**2, 1e-300)
                                   + (var(pb, n) + var(pb, npy)) / pb**2)
    close(r["CLs_obs"], f["CLs_obs"], sd_cls, "CLs_obs")

    # the band. pyhf_band is pyhf's formula: it gives pyhf's own band from
    # pyhf's toys, and ours from ours
    sb_py, b_py = np.asarray(f["signal_plus_background"]), np.asarray(f["background"])
    np.testing.assert_allclose(pyhf_band(sb_py, b_py, q0), f["CLs_exp"], rtol=1e-12, atol=1e-15)
    sb, b = d.signal_plus_background["values"], d.background["values"]
    np.testing.assert_allclose(r["CLs_exp"], pyhf_band(sb, b, q0), rtol=1e-13, atol=1e-15)
    # pyhf's statistics carry its fits' noise: where ours are exactly 0 (q0
    # with mu_hat <= 0: 4 % of these background toys) pyhf's are 1e-11 ... 1e-6,
    # so at the band's upper end pyhf's CLs+b counts only the s+b toys above
    # that noise (0.71 instead of 1). Compared on pyhf's toys rounded as for KS.
    py_band = pyhf_band(np.round(sb_py, 4), np.round(b_py, 4), q0)
    # bootstrap s.d. over our toys (pyhf's error taken as equal), with one
    # toy's worth of CLs as its floor
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(100):
        sb2, b2 = np.sort(rng.choice(sb, sb.size)), rng.choice(b, b.size)
        b2s = np.sort(b2)
        clsb = (sb2.size - np.searchsorted(sb2, b2, "left")) / sb2.size
        clb = (b2s.size - np.searchsorted(b2s, b2, "left")) / b2s.size
        boot.append(np.percentile(clsb if q0 else clsb / clb, PERCENTILES))
    bsd = np.std(boot, axis=0)
    for k in range(5):
        clb_k = 1.0 if q0 else max(r["CLb_exp"][k], 1.0 / n)
        sd = np.hypot(bsd[k], 1.0 / (n * clb_k)) * np.sqrt(1 + n / npy)
        close(r["CLs_exp"][k], py_band[k], sd, f"CLs_exp[{k}]")


def test_bad_input(shapesys):
    m, data = shapesys
    with pytest.raises(exceptions.InvalidInput, match="ntoys must be at least 1"):
        anagrad.infer.hypotest(1.0, data, m, calctype="toybased", ntoys=0)
    with pytest.raises(exceptions.InvalidInput, match="ntoys must be an integer"):
        toys.distributions(1.0, data, m, ntoys=10.5)
    with pytest.raises(exceptions.InvalidInput, match=r"seed must be in \[0, 2\*\*64\)"):
        toys.distributions(1.0, data, m, ntoys=10, seed=-1)
    for bad in [(4, 4), (0, 0), (-1, 2), "0/4", "5/4", "a/b", (1, 2, 3), 3]:
        with pytest.raises(exceptions.InvalidInput, match="shard"):
            toys.distributions(1.0, data, m, ntoys=10, shard=bad)
    with pytest.raises(exceptions.InvalidInput, match="unsupported options"):
        anagrad.infer.hypotest(1.0, data, m, calctype="toybased", ntoys=10, shard=(0, 2))
    with pytest.raises(exceptions.InvalidInput, match="calctype 'bogus'"):
        anagrad.infer.hypotest(1.0, data, m, calctype="bogus")
    with pytest.raises(exceptions.InvalidInput, match="test statistic"):
        toys.distributions(1.0, data, m, ntoys=10, test_stat="bogus")
    # merging
    a = toys.distributions(1.0, data, m, ntoys=10, seed=1, shard=(0, 2))
    b = toys.distributions(1.0, data, m, ntoys=10, seed=2, shard=(1, 2))
    with pytest.raises(exceptions.InvalidInput, match="belongs to another ensemble"):
        toys.merge([a, b])
    with pytest.raises(exceptions.InvalidInput, match="shard 1/2 appears twice"):
        toys.merge([a, a])
    with pytest.raises(exceptions.InvalidInput, match="nothing to merge"):
        toys.merge([])
    with pytest.raises(exceptions.InvalidInput, match="expected ToyDistributions"):
        toys.merge([a, {"not": "toys"}])
    with pytest.raises(exceptions.InvalidSpecification, match="toy distributions"):
        toys.ToyDistributions.from_json("{}")
