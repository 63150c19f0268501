"""Upper limits with pyhf's signatures (``pyhf.infer.intervals.upper_limits``).

Root finding is Brent's method on CLs(mu) from one asymptotic calculator
(the fits that do not depend on mu are done once), to ``atol + rtol*|mu|``
(default rtol 1e-10: pyhf's toms748 default is 1e-4, so pyhf's own limits
carry ~1e-4 relative error).
"""

import numpy as np

from .. import exceptions
from .._common import _setup_args, _farr

__all__ = ["upper_limit", "linear_grid_scan", "toms748_scan"]


def _hypotest_kwargs(kw):
    test_stat = kw.pop("test_stat", "qtilde")
    threads = kw.pop("threads", None)
    init = kw.pop("init_pars", None)
    bounds = kw.pop("par_bounds", None)
    fixed = kw.pop("fixed_params", None)
    calctype = kw.pop("calctype", "asymptotics")
    if calctype != "asymptotics":
        raise exceptions.InvalidInput(
            f"upper_limit: calctype '{calctype}' is not supported (asymptotics only; toys: "
            "anagrad.infer.hypotest(..., calctype='toybased') per POI value, or the CLI's "
            "`anagrad upper-limit --calctype toybased --scan ...`)"
        )
    kw.pop("return_expected_set", None)
    if kw:
        raise exceptions.InvalidInput(f"upper_limit: unsupported options {sorted(kw)}")
    return test_stat, threads, init, bounds, fixed


def _results(r):
    return [
        (np.asarray(t["CLs_obs"]), [np.asarray(x) for x in t["CLs_exp"]]) for t in r["tested"]
    ]


def _run(data, model, scan, level, bracket, rtol, atol, hypotest_kwargs):
    test_stat, threads, init, bounds, fixed = _hypotest_kwargs(dict(hypotest_kwargs))
    init, bounds, fixed = _setup_args(model, init, bounds, fixed)
    return model._core.upper_limit(
        _farr(data),
        None if scan is None else [float(m) for m in scan],
        float(level), init, bounds, fixed, test_stat, bracket, rtol, atol, threads,
    )


def linear_grid_scan(data, model, scan, level=0.05, return_results=False, **hypotest_kwargs):
    """Limits by linear interpolation of CLs on the grid ``scan`` (as pyhf)."""
    scan = np.asarray(scan, dtype=np.float64)
    r = _run(data, model, scan, level, None, 1e-10, 1e-12, hypotest_kwargs)
    obs, exp = np.asarray(r["obs_limit"]), [np.asarray(x) for x in r["exp_limits"]]
    if return_results:
        return obs, exp, (scan, _results(r))
    return obs, exp


def toms748_scan(data, model, bounds_low, bounds_up, level=0.05, atol=2e-12, rtol=1e-10,
                 from_upper_limit_fn=False, **hypotest_kwargs):
    """Limits by root finding in ``[bounds_low, bounds_up]`` (widened as pyhf
    widens it); Brent's method instead of TOMS 748, same bracketing."""
    r = _run(data, model, None, level, (float(bounds_low), float(bounds_up)), rtol, atol,
             hypotest_kwargs)
    obs, exp = np.asarray(r["obs_limit"]), [np.asarray(x) for x in r["exp_limits"]]
    if from_upper_limit_fn:
        return obs, exp, ([t["poi_test"] for t in r["tested"]], _results(r))
    return obs, exp


def upper_limit(data, model, scan=None, level=0.05, return_results=False, **hypotest_kwargs):
    """Observed and expected (``(-2, -1, 0, 1, 2)`` sigma) upper limits on the
    POI at CLs = ``level`` (pyhf's ``upper_limit``): a linear grid scan if
    ``scan`` is given, else root finding starting from the POI's bounds.

    Returns ``(obs_limit, [exp_limits])`` (0-d arrays), plus the tested points
    if ``return_results`` (``(scan, results)`` for a grid; ``(pois, results)``
    for root finding, each result ``(CLs_obs, [CLs_exp band])``).
    """
    if scan is not None:
        return linear_grid_scan(data, model, scan, level, return_results, **hypotest_kwargs)
    rtol = hypotest_kwargs.pop("rtol", 1e-10)
    atol = hypotest_kwargs.pop("atol", 1e-12)
    r = _run(data, model, None, level, None, rtol, atol, hypotest_kwargs)
    obs, exp = np.asarray(r["obs_limit"]), [np.asarray(x) for x in r["exp_limits"]]
    if return_results:
        return obs, exp, ([t["poi_test"] for t in r["tested"]], _results(r))
    return obs, exp
