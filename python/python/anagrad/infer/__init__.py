"""Inference with pyhf's signatures: ``hypotest``, ``mle``, ``intervals``.

The asymptotic calculator (``calctype="asymptotics"``, default) and toys
(``calctype="toybased"``: pyhf's ``ToyCalculator``, seeded and shardable, see
:mod:`anagrad.infer.toys`); test statistics ``qtilde`` (default), ``q`` and
``q0``. Fits are anagrad's bounded Newton fits
with exact Hessians, converged to a projected gradient <= 1e-10 (else
:class:`~anagrad.exceptions.FailedMinimization`), global where the model can
be non-convex.
"""

import numpy as np

from .. import exceptions
from ._common import _setup_args, _farr

__all__ = ["hypotest", "hypotest_scan", "significance", "mle", "intervals", "toys"]


def _check_calc(calctype, return_calculator):
    if calctype not in ("asymptotics", "toybased"):
        raise exceptions.InvalidInput(
            f"calctype '{calctype}' is not supported: expected 'asymptotics' or 'toybased'"
        )
    if return_calculator:
        raise exceptions.InvalidInput("return_calculator is not supported by anagrad")


def _format_hypotest(r, return_tail_probs, return_expected, return_expected_set):
    """pyhf's return tuple from one result dict of ``_core.Model.hypotest``."""
    is_q0 = r["test_stat"] == "q0"
    a = np.asarray
    out = [a(r["CLsb_obs"] if is_q0 else r["CLs_obs"])]
    if return_tail_probs:
        out.append([a(r["CLb_obs"])] if is_q0 else [a(r["CLsb_obs"]), a(r["CLb_obs"])])
    band = [a(x) for x in (r["CLsb_exp"] if is_q0 else r["CLs_exp"])]
    if return_expected_set:
        if return_expected:
            out.append(a(band[2]))
        out.append(band)
    elif return_expected:
        out.append(a(band[2]))
    return tuple(out) if len(out) > 1 else out[0]


def hypotest(
    poi_test,
    data,
    pdf,
    init_pars=None,
    par_bounds=None,
    fixed_params=None,
    calctype="asymptotics",
    return_tail_probs=False,
    return_expected=False,
    return_expected_set=False,
    return_calculator=False,
    test_stat="qtilde",
    threads=None,
    **kwargs,
):
    r"""CLs at one POI value (pyhf's ``infer.hypotest``), asymptotic or from toys.

    Returns, as pyhf: ``CLs_obs`` (0-d array; for ``test_stat="q0"`` the
    observed p0), then ``[CLsb_obs, CLb_obs]`` if ``return_tail_probs``,
    ``CLs_exp`` if ``return_expected``, the 5-element list of the
    ``(-2, -1, 0, 1, 2)`` sigma expected band if ``return_expected_set``.
    ``threads``: rayon threads for this call (default: ``set_num_threads``).

    ``calctype="toybased"`` (pyhf's ``ToyCalculator``) takes ``ntoys``
    (default 2000 per hypothesis), ``seed`` (default 0: the same seed gives
    the same numbers, bit for bit, as ``anagrad cls --calctype toybased
    --seed``) and ``track_progress`` (default False); the expected band is
    taken from the toy distributions as pyhf does. To split an ensemble over
    processes or machines see :mod:`anagrad.infer.toys`.
    """
    _check_calc(calctype, return_calculator)
    if calctype == "toybased":
        from . import toys

        known = {"ntoys", "seed", "track_progress"}
        if set(kwargs) - known:
            raise exceptions.InvalidInput(
                f"hypotest (toybased): unsupported options {sorted(set(kwargs) - known)}"
            )
        d = toys.distributions(
            poi_test, data, pdf, init_pars, par_bounds, fixed_params, test_stat=test_stat,
            threads=threads, **kwargs,
        )
        return _format_hypotest(d.result(), return_tail_probs, return_expected,
                                return_expected_set)
    kwargs.pop("calc_base_dist", None)
    if kwargs:
        raise exceptions.InvalidInput(f"hypotest: unsupported options {sorted(kwargs)}")
    r = pdf._core.hypotest(
        [float(poi_test)],
        _farr(data),
        *_setup_args(pdf, init_pars, par_bounds, fixed_params),
        test_stat,
        threads,
    )[0]
    return _format_hypotest(r, return_tail_probs, return_expected, return_expected_set)


def hypotest_scan(poi_values, data, pdf, init_pars=None, par_bounds=None, fixed_params=None,
                  test_stat="qtilde", threads=None):
    """Hypothesis tests at several POI values with one calculator (the free
    fits are shared); a list of dicts with ``CLs_obs``, ``CLs_exp`` (5),
    ``CLsb_obs``, ``CLb_obs``, ``CLsb_exp``, ``CLb_exp``, ``qmu``, ``qmu_A``."""
    return pdf._core.hypotest(
        [float(m) for m in poi_values],
        _farr(data),
        *_setup_args(pdf, init_pars, par_bounds, fixed_params),
        test_stat,
        threads,
    )


def significance(data, pdf, threads=None):
    """Discovery test (q0 with Asimov data at POI = 1): a dict with ``p0_obs``,
    ``p0_exp`` (5), ``Z_obs``, ``Z_exp`` (5), ``q0``, ``q0_A``."""
    return pdf._core.significance(_farr(data), threads)


from . import mle  # noqa: E402
from . import intervals  # noqa: E402
from . import toys  # noqa: E402
