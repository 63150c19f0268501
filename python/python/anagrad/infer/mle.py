"""Maximum-likelihood fits with pyhf's signatures (``pyhf.infer.mle``)."""

import numpy as np

from .. import exceptions
from ._common import _setup_args, _farr

__all__ = ["fit", "fixed_poi_fit", "twice_nll", "FitResult"]


class FitResult(dict):
    """Like scipy's ``OptimizeResult``: ``x``, ``fun`` (-2 log L), ``unc``,
    ``corr``, ``nit``, plus anagrad's ``starts``, ``minima``, ``runner_up``
    (global-fit diagnostics) and ``grad_norm``."""

    __getattr__ = dict.get

    def __repr__(self):
        return f"FitResult(fun={self['fun']!r}, nit={self['nit']}, starts={self['starts']}, minima={self['minima']})"


def twice_nll(pars, data, pdf):
    """``-2 log L``, as a shape-(1,) array like pyhf."""
    return -2 * pdf.logpdf(pars, data)


def _fit(data, pdf, init_pars, par_bounds, fixed_params, poi_value,
         return_uncertainties=False, return_correlations=False, return_fitted_val=False,
         return_result_obj=False, threads=None, **kwargs):
    for k in ("do_grad", "do_stitch", "strategy", "tolerance", "maxiter", "solver_options",
              "method", "verbose", "disp"):
        kwargs.pop(k, None)
    if kwargs:
        raise exceptions.InvalidInput(f"fit: unsupported options {sorted(kwargs)}")
    init, bounds, fixed = _setup_args(pdf, init_pars, par_bounds, fixed_params)
    r = pdf._core.fit(
        _farr(data), init, bounds, fixed, poi_value,
        return_uncertainties or return_result_obj,
        return_correlations or return_result_obj, threads,
    )
    n = pdf.config.npars
    pars = r["pars"]
    out = [np.stack([pars, r["uncertainties"]], axis=1) if return_uncertainties else pars]
    corr = r["correlations"].reshape(n, n) if "correlations" in r else None
    if return_correlations:
        out.append(corr)
    if return_fitted_val:
        out.append(np.asarray(r["twice_nll"]))
    if return_result_obj:
        out.append(
            FitResult(
                x=pars, fun=np.asarray(r["twice_nll"]), unc=r.get("uncertainties"), corr=corr,
                nit=r["iterations"], success=True, starts=r["starts"], minima=r["minima"],
                runner_up=r["runner_up"], grad_norm=r["grad_norm"], kinks=r["kinks"],
            )
        )
    return tuple(out) if len(out) > 1 else out[0]


def fit(data, pdf, init_pars=None, par_bounds=None, fixed_params=None, **kwargs):
    """Maximum-likelihood fit (pyhf's ``infer.mle.fit``).

    Returns the best-fit parameters (shape ``(n,)``; ``(n, 2)`` with
    uncertainties if ``return_uncertainties``), then the correlation matrix
    if ``return_correlations``, then ``-2 log L`` at the minimum (0-d array)
    if ``return_fitted_val``, then a :class:`FitResult` if ``return_result_obj``.
    Uncertainties are ``sqrt(diag(2 H^-1))`` from the exact Hessian (0 for
    fixed parameters), as pyhf's minuit optimizer reports them.
    """
    return _fit(data, pdf, init_pars, par_bounds, fixed_params, None, **kwargs)


def fixed_poi_fit(poi_val, data, pdf, init_pars=None, par_bounds=None, fixed_params=None, **kwargs):
    """Fit with the POI fixed at ``poi_val`` (pyhf's ``infer.mle.fixed_poi_fit``)."""
    if pdf.config.poi_index is None:
        raise exceptions.UnspecifiedPOI(
            "No POI is defined. A POI is required to fit with a fixed POI."
        )
    init_pars = list(init_pars if init_pars is not None else pdf.config.suggested_init())
    fixed_params = list(fixed_params if fixed_params is not None else pdf.config.suggested_fixed())
    init_pars[pdf.config.poi_index] = float(poi_val)
    fixed_params[pdf.config.poi_index] = True
    return _fit(data, pdf, init_pars, par_bounds, fixed_params, float(poi_val), **kwargs)
