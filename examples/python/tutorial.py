"""A pyhf tutorial, run with anagrad by changing one import.

The analysis code below (`analysis(pyhf)`) is plain pyhf 0.7.6 API: a fit,
a hypothesis test with the expected band, an upper limit, first on the
shipped example workspace, then on a published ATLAS likelihood (SUSY-2018-31
sbottom RegionA) with one signal point of its HEPData patchset applied. It
runs with ``import anagrad as pyhf`` and prints the numbers next to pyhf's:

    python examples/python/tutorial.py            # anagrad vs pyhf's reference numbers
    python examples/python/tutorial.py --pyhf     # also run the same code with pyhf itself

The reference numbers are pyhf 0.7.6's, stored in the repository
(tests/fixtures/pyhf/refs/example.json, tests/fixtures/published/*/refs.json:
pyhf's logpdf minimised to a projected gradient <= 1e-10, so they are the
exact pyhf answers rather than its default scipy fits, which stop at ~1e-6).
`--pyhf` runs pyhf's own numpy backend on the same code (about a minute for
the published likelihood) and prints its numbers too. The test
python/tests/test_tutorial.py runs `main()` and checks every line.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "workspace.json"
PUBLISHED = REPO / "tests" / "fixtures" / "published" / "atlas-susy-2018-31-sbottom-regiona"
SIGNAL_POINT = "sbottom_1300_850_60"


def analysis(pyhf):
    """The tutorial: pyhf's API only. Returns the numbers it prints."""
    out = {}

    # --- 1. a workspace: build the model, fit, test mu = 1, set a limit
    with open(EXAMPLE) as f:
        spec = json.load(f)
    ws = pyhf.Workspace(spec)
    model = ws.model()
    data = ws.data(model)
    print(f"  parameters: {model.config.npars}, POI '{model.config.poi_name}' "
          f"(index {model.config.poi_index}), channels {model.config.channels}")

    bestfit, twice_nll = pyhf.infer.mle.fit(data, model, return_fitted_val=True)
    mu_hat = bestfit[model.config.poi_index]
    print(f"  best fit: mu_hat = {mu_hat:.6f}, -2 log L = {float(twice_nll):.8f}")

    cls_obs, cls_exp = pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde",
                                           return_expected_set=True)
    print(f"  CLs(mu=1) observed {float(cls_obs):.8f}, expected band "
          + " ".join(f"{float(c):.6f}" for c in cls_exp))

    obs_limit, exp_limits = pyhf.infer.intervals.upper_limits.upper_limit(data, model, level=0.05)
    print(f"  95% CL upper limit on mu: observed {float(obs_limit):.6f}, expected "
          + " ".join(f"{float(e):.5f}" for e in exp_limits))
    out["example"] = {
        "twice_nll": float(twice_nll), "mu_hat": float(mu_hat), "CLs_obs": float(cls_obs),
        "CLs_exp": [float(c) for c in cls_exp], "obs_limit": float(obs_limit),
        "exp_limits": [float(e) for e in exp_limits],
    }

    # --- 2. a published likelihood: background-only workspace + signal patchset
    with open(PUBLISHED / "BkgOnly.json") as f:
        bkg_only = json.load(f)
    with open(PUBLISHED / "patchset.json") as f:
        patchset = pyhf.PatchSet(json.load(f))
    print(f"  patchset: {len(patchset.patches)} signal points, labels {patchset.labels}")
    ws = patchset.apply(bkg_only, SIGNAL_POINT)
    model = ws.model()
    data = ws.data(model)
    bestfit, twice_nll = pyhf.infer.mle.fit(data, model, return_fitted_val=True)
    print(f"  {SIGNAL_POINT}: {model.config.npars} parameters, "
          f"mu_hat = {bestfit[model.config.poi_index]:.6f}, -2 log L = {float(twice_nll):.6f}")
    cls_obs, cls_exp = pyhf.infer.hypotest(1.0, data, model, return_expected_set=True)
    print(f"  CLs(mu=1) observed {float(cls_obs):.8f}, expected band "
          + " ".join(f"{float(c):.6e}" for c in cls_exp))
    obs_limit, exp_limits = pyhf.infer.intervals.upper_limits.upper_limit(data, model)
    print(f"  upper limit: observed {float(obs_limit):.6f}, expected "
          + " ".join(f"{float(e):.5f}" for e in exp_limits))
    out["published"] = {
        "twice_nll": float(twice_nll), "mu_hat": float(bestfit[model.config.poi_index]),
        "CLs_obs": float(cls_obs), "CLs_exp": [float(c) for c in cls_exp],
        "obs_limit": float(obs_limit), "exp_limits": [float(e) for e in exp_limits],
    }
    return out


def references():
    """pyhf 0.7.6's numbers (precise fits), from the repository's fixtures."""
    with open(REPO / "tests" / "fixtures" / "pyhf" / "refs" / "example.json") as f:
        ex = json.load(f)
    with open(PUBLISHED / "refs.json") as f:
        pub = next(p for p in json.load(f)["points"] if p["name"] == SIGNAL_POINT)
    poi = ex["par_names"].index(ex["poi"])
    ppoi = pub["par_names"].index(pub["poi"])
    return {
        "example": {
            "twice_nll": ex["mle"]["twice_nll"], "mu_hat": ex["mle"]["pars"][poi],
            "CLs_obs": ex["hypotest"]["qtilde"]["CLs_obs"],
            "CLs_exp": ex["hypotest"]["qtilde"]["CLs_exp"],
            "obs_limit": ex["upper_limit"]["obs"], "exp_limits": ex["upper_limit"]["exp"],
        },
        "published": {
            "twice_nll": pub["mle"]["twice_nll"], "mu_hat": pub["mle"]["pars"][ppoi],
            "CLs_obs": pub["hypotest"]["CLs_obs"], "CLs_exp": pub["hypotest"]["CLs_exp"],
            "obs_limit": pub["upper_limit"]["obs"], "exp_limits": pub["upper_limit"]["exp"],
        },
    }


# tolerances: the CLI's against the same references (tests/infer_pyhf.rs, tests/published.rs)
TOL = {"twice_nll": 1e-9, "mu_hat": 1e-5, "CLs_obs": 1e-5, "CLs_exp": 1e-5,
       "obs_limit": 1e-4, "exp_limits": 1e-4}


def compare(got, ref, label):
    """Prints the worst relative deviation per quantity; returns the failures."""
    bad = []
    for part in ("example", "published"):
        for k, tol in TOL.items():
            g, r = np.atleast_1d(got[part][k]), np.atleast_1d(ref[part][k])
            if k == "mu_hat":
                dev = float(np.max(np.abs(g - r)))  # absolute (mu_hat can be ~0)
            else:
                dev = float(np.max(np.abs(g - r) / np.abs(r)))
            ok = dev <= tol
            print(f"  {label:>8} {part:>9} {k:<10} {'abs' if k == 'mu_hat' else 'rel'} "
                  f"dev {dev:.1e} (tol {tol:.0e}) {'ok' if ok else 'FAIL'}")
            if not ok:
                bad.append((part, k, dev))
    return bad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pyhf", action="store_true", help="also run the tutorial with pyhf itself")
    args = ap.parse_args(argv)

    import anagrad as pyhf  # <- the only change to a pyhf script

    print(f"== anagrad {pyhf.__version__}")
    t0 = time.perf_counter()
    got = analysis(pyhf)
    t_anagrad = time.perf_counter() - t0
    print(f"  ({t_anagrad:.2f} s)")
    ref = references()
    print("== anagrad vs pyhf 0.7.6 (reference fits)")
    bad = compare(got, ref, "anagrad")

    if args.pyhf:
        import pyhf as real_pyhf

        real_pyhf.set_backend("numpy")
        print(f"== pyhf {real_pyhf.__version__} (numpy backend, scipy fits)")
        t0 = time.perf_counter()
        theirs = analysis(real_pyhf)
        print(f"  ({time.perf_counter() - t0:.2f} s; anagrad {t_anagrad:.2f} s)")
        print("== pyhf's own run vs the reference fits (pyhf's scipy tolerance and toms748 rtol=1e-4)")
        compare(theirs, ref, "pyhf")
    if bad:
        print(f"FAILED: {bad}")
        return 1
    print("all numbers agree with pyhf")
    return 0


if __name__ == "__main__":
    sys.exit(main())
