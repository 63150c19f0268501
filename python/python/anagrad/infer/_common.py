import numpy as np

from .. import exceptions


def _farr(x):
    return np.ascontiguousarray(x, dtype=np.float64).reshape(-1)


def _setup_args(pdf, init_pars, par_bounds, fixed_params):
    """``(init, flat bounds, fixed)`` for the core calls (``None``: the model's)."""
    n = pdf.config.npars
    init = None if init_pars is None else _farr(init_pars)
    bounds = None
    if par_bounds is not None:
        b = np.ascontiguousarray(par_bounds, dtype=np.float64)
        if b.shape != (n, 2):
            raise exceptions.InvalidInput(
                f"par_bounds has shape {b.shape}, the model needs ({n}, 2)"
            )
        bounds = b.reshape(-1)
    fixed = None if fixed_params is None else [bool(f) for f in fixed_params]
    if init is not None:
        lo_hi = bounds.reshape(n, 2) if bounds is not None else np.asarray(pdf.config.suggested_bounds())
        fx = fixed if fixed is not None else pdf.config.suggested_fixed()
        for i, (v, (lo, hi)) in enumerate(zip(init, lo_hi)):
            if not fx[i] and not (lo <= v <= hi):
                raise ValueError(
                    f"fit initialization parameter (index: {i}, value: {v}) lies outside of its bounds: {[lo, hi]}"
                )
    return init, bounds, fixed
