"""Exact gradients of statistical objectives w.r.t. every template input.

Each function takes a :class:`~anagrad.Model` (or a :class:`~anagrad.Workspace`,
whose default model is used) and optionally ``yields``: new values for some
templates, a dict keyed like the gradients. It returns ``GradResult(value,
grad)`` where ``grad`` maps ``(channel, sample, modifier, role)`` to a numpy
array:

=================  ==========================================  ================
role               what                                        key example
=================  ==========================================  ================
``nominal``        a sample's nominal yields                   ``("SR", "signal", None, "nominal")``
``hi_data``        histosys up template                        ``("SR", "ttbar", "jes", "hi_data")``
``lo_data``        histosys down template                      ``("SR", "ttbar", "jes", "lo_data")``
``hi`` / ``lo``    normsys factors (length 1)                  ``("SR", "ttbar", "xsec", "hi")``
``uncertainty``    shapesys / staterror absolute uncertainty   ``("SR", "wjets", "wjets_shape", "uncertainty")``
``tf_mc``          transferfactor TF_MC                        ``("SR", "bkg", "tf", "tf_mc")``
``observed``       observed main data of a channel             ``("SR", None, None, "observed")``
=================  ==========================================  ================

By default the gradient is taken w.r.t. every template input of the model and
the observations (``wrt=None``); pass ``wrt=[keys]`` to restrict it (the cost
grows with the number of inputs). Values come from the same fits as
``anagrad.infer`` (converged to a projected gradient <= 1e-10), gradients
from the envelope theorem at those fits and the implicit-function theorem
where a quantity is not at a stationary point (see the Rust ``grad`` module).

Objectives (neos/relaxed conventions unless noted):

* :func:`cls` -- expected CLs on background-only Asimov data (what neos minimises);
* :func:`p0`, :func:`z0` -- discovery p-value / significance on s+b Asimov data;
* :func:`sigma_mu` -- Cramer-Rao uncertainty of the POI; :func:`generalised_variance`;
* :func:`observed_cls` -- pyhf's observed CLs (``hypotest``'s first number);
* :func:`observed_test_stat` -- q, q~, q0 on the observed data;
* :func:`observed_nll` -- the profile ``-2 log L`` at the best fit;
* :func:`z_asimov` -- the closed-form Asimov significance of (s, b[, sigma_b]).
"""

from typing import NamedTuple

import numpy as np

from . import _core
from . import exceptions

__all__ = [
    "GradResult",
    "Objective",
    "input_keys",
    "cls",
    "p0",
    "z0",
    "sigma_mu",
    "generalised_variance",
    "observed_cls",
    "observed_test_stat",
    "observed_nll",
    "z_asimov",
]

ROLES = ("nominal", "hi_data", "lo_data", "hi", "lo", "uncertainty", "tf_mc", "observed")


class GradResult(NamedTuple):
    """Value and gradients (dict keyed by ``(channel, sample, modifier, role)``)."""

    value: float
    grad: dict


def _model(m):
    from .workspace import Model, Workspace

    if isinstance(m, Model):
        return m
    if isinstance(m, Workspace):
        return m.model()
    if isinstance(m, dict):
        return Workspace(m).model()
    raise exceptions.InvalidInput(
        f"expected an anagrad Model or Workspace, got {type(m).__name__}"
    )


def input_keys(model, observed=True):
    """Every template input of ``model`` as ``(channel, sample, modifier, role)``
    keys, in the model's template order (then the observations)."""
    model = _model(model)
    keys = [(c, s, m, r) for c, s, m, _, r, _, _ in model._core.input_layout()]
    if observed:
        keys += [(c, None, None, "observed") for c in model.config.channels]
    return keys


def _norm_key(key):
    k = tuple(key)
    if len(k) == 2 and k[1] == "observed":
        return (k[0], None, None, "observed")
    if len(k) == 2:
        return (k[0], k[1], None, "nominal")
    if len(k) != 4 or k[3] not in ROLES:
        raise exceptions.InvalidInput(
            f"input key {key!r}: expected (channel, sample, modifier, role) with role in {ROLES}"
        )
    return k


class Objective:
    """A differentiable objective over chosen template inputs of a model: the
    compiled loss is built once and evaluated many times (training loops,
    the JAX/PyTorch adapters).

    ``inputs``: the keys whose values are supplied at evaluation, in order
    (``None``: every template input and the observations). ``kind``: ``cls``,
    ``p0``, ``z0``, ``sigma_mu``, ``generalised_variance``,
    ``observed_test_stat``, ``observed_cls`` or ``observed_nll``.
    ``floor``: a constant added to supplied yields (neos: 1e-3).
    """

    def __init__(self, model, kind="cls", inputs=None, *, test_mu=1.0, test_stat="qtilde",
                 hyp_mu=1.0, poi=None, asimov="nominal", floor=0.0):
        self.model = _model(model)
        self.kind = kind
        self.inputs = [_norm_key(k) for k in (inputs if inputs is not None else input_keys(self.model))]
        try:
            self._loss = _core.Loss(
                self.model._core, self.inputs, kind, float(test_mu), test_stat, float(hyp_mu),
                None if poi is None else float(poi), asimov, float(floor),
            )
        except exceptions.InvalidInput as e:
            raise exceptions.InvalidInput(
                f"{e} (the model's inputs: {input_keys(self.model)})"
            ) from None
        self.input_lens = self._loss.input_lens()
        self._offsets = np.concatenate([[0], np.cumsum(self.input_lens)]).astype(int)

    def current_values(self):
        """The model's own values of the inputs, as a list of arrays."""
        return self.split(self._loss.current_values())

    def split(self, flat):
        o = self._offsets
        return [np.asarray(flat[o[i] : o[i + 1]]) for i in range(len(self.input_lens))]

    def flatten(self, values):
        """Concatenate a list of arrays (one per input) into the flat vector."""
        if len(values) != len(self.inputs):
            raise exceptions.InvalidInput(
                f"{len(values)} arrays given, the objective has {len(self.inputs)} inputs"
            )
        parts = []
        for k, v, n in zip(self.inputs, values, self.input_lens):
            a = np.ascontiguousarray(v, dtype=np.float64).reshape(-1)
            if a.size != n:
                raise exceptions.InvalidInput(f"input {k!r} needs {n} values, {a.size} given")
            parts.append(a)
        return np.concatenate(parts) if parts else np.zeros(0)

    def evaluate_flat(self, flat, with_grad=True, threads=None):
        """``(value, flat gradient or None)``."""
        return self._loss.evaluate(np.ascontiguousarray(flat, dtype=np.float64), with_grad, threads)

    def __call__(self, values=None, with_grad=True, threads=None):
        """``(value, [gradient per input])`` at ``values`` (a list of arrays in
        input order, or a dict keyed by input; missing ones: the model's own)."""
        if values is None:
            flat = self._loss.current_values()
        elif isinstance(values, dict):
            cur = self.current_values()
            given = {_norm_key(k): v for k, v in values.items()}
            unknown = set(given) - set(self.inputs)
            if unknown:
                raise exceptions.InvalidInput(
                    f"values for keys that are not inputs of this objective: {sorted(map(str, unknown))}"
                )
            flat = self.flatten([given.get(k, c) for k, c in zip(self.inputs, cur)])
        else:
            flat = self.flatten(values)
        v, g = self.evaluate_flat(flat, with_grad, threads)
        return v, (self.split(g) if g is not None else None)

    def value_and_grad(self, values=None, threads=None):
        """:class:`GradResult` with the gradient as a dict keyed by input."""
        v, g = self(values, True, threads)
        return GradResult(v, dict(zip(self.inputs, g)))


def _run(kind, model, yields, wrt, threads, **params):
    model = _model(model)
    keys = [_norm_key(k) for k in (wrt if wrt is not None else input_keys(model))]
    if yields:
        for k in yields:
            nk = _norm_key(k)
            if nk not in keys:
                keys.append(nk)
    obj = Objective(model, kind, keys, **params)
    return obj.value_and_grad(yields, threads)


def cls(model, yields=None, *, test_mu=1.0, test_stat="qtilde", wrt=None, asimov="nominal",
        floor=0.0, threads=None):
    """Expected (median) CLs at ``test_mu`` on background-only Asimov data
    (``asimov="nominal"``: the suggested inits with POI 0, as neos/relaxed;
    ``"conditional_fit"``: pyhf's Asimov data from the POI = 0 fit)."""
    return _run("cls", model, yields, wrt, threads, test_mu=test_mu, test_stat=test_stat,
                asimov=asimov, floor=floor)


def p0(model, yields=None, *, wrt=None, asimov="nominal", floor=0.0, threads=None):
    """Expected discovery p-value on signal-plus-background (POI = 1) Asimov data."""
    return _run("p0", model, yields, wrt, threads, asimov=asimov, floor=floor)


def z0(model, yields=None, *, wrt=None, asimov="nominal", floor=0.0, threads=None):
    """Expected discovery significance sqrt(q0) on POI = 1 Asimov data."""
    return _run("z0", model, yields, wrt, threads, asimov=asimov, floor=floor)


def sigma_mu(model, yields=None, *, hyp_mu=1.0, wrt=None, floor=0.0, threads=None):
    """Cramer-Rao uncertainty of the POI from the Fisher information at POI = ``hyp_mu``."""
    return _run("sigma_mu", model, yields, wrt, threads, hyp_mu=hyp_mu, floor=floor)


def generalised_variance(model, yields=None, *, hyp_mu=1.0, wrt=None, floor=0.0, threads=None):
    """1 / det(Fisher information) at POI = ``hyp_mu``."""
    return _run("generalised_variance", model, yields, wrt, threads, hyp_mu=hyp_mu, floor=floor)


def observed_cls(model, yields=None, *, test_mu=1.0, test_stat="qtilde", wrt=None, floor=0.0,
                 threads=None):
    """Observed CLs as pyhf's asymptotic ``hypotest`` computes it."""
    return _run("observed_cls", model, yields, wrt, threads, test_mu=test_mu,
                test_stat=test_stat, floor=floor)


def observed_test_stat(model, yields=None, *, test_stat="qtilde", test_mu=1.0, wrt=None,
                       floor=0.0, threads=None):
    """A test statistic (``qtilde``, ``q``, ``q0``, ``t``, ``ttilde``) on the observed data."""
    return _run("observed_test_stat", model, yields, wrt, threads, test_stat=test_stat,
                test_mu=test_mu, floor=floor)


def observed_nll(model, yields=None, *, poi=None, wrt=None, floor=0.0, threads=None):
    """``-2 log L`` at the best fit to the observed data (POI fixed at ``poi`` if given)."""
    return _run("observed_nll", model, yields, wrt, threads, poi=poi, floor=floor)


def z_asimov(s, b, sigma=None, floor=0.0):
    """Closed-form Asimov significance Z_A of signal ``s`` over background
    ``b`` per bin (combined in quadrature), with absolute background
    uncertainty ``sigma`` if given. Returns ``GradResult(Z_A, {"s": ..., "b": ...[, "sigma": ...]})``."""
    f = lambda x: np.ascontiguousarray(x, dtype=np.float64).reshape(-1)  # noqa: E731
    z, gs = _core.asimov_significance(f(s), f(b), None if sigma is None else f(sigma), float(floor))
    names = ["s", "b", "sigma"]
    return GradResult(z, dict(zip(names, gs)))
