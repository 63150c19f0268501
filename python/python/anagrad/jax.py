"""JAX adapter: anagrad objectives as differentiable JAX functions.

``f = anagrad.jax.objective(model, "cls", inputs=[...])`` returns a function
``f(*arrays) -> scalar`` (one array per input, any shape with the input's
number of elements) with a ``jax.custom_vjp`` whose backward pass is
anagrad's exact gradient. It works under ``jax.grad``, ``jax.value_and_grad``
and ``jax.jit`` (through ``jax.pure_callback``; not under ``vmap``). Values are
computed in float64 and returned in the inputs' dtype (float32 unless
``jax_enable_x64``).

Imported only if JAX is installed: ``import anagrad.jax``.
"""

import jax
import jax.numpy as jnp
import numpy as np

from .grad import Objective

__all__ = ["objective", "cls", "p0", "z0", "sigma_mu", "observed_cls"]


def objective(model, kind="cls", inputs=None, **params):
    """A JAX-differentiable scalar function of the inputs' values (see
    :class:`anagrad.grad.Objective` for ``kind``, ``inputs`` and ``params``)."""
    threads = params.pop("threads", None)
    obj = Objective(model, kind, inputs, **params)
    n_in = len(obj.inputs)

    def host(with_grad, *arrays):
        flat = np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])
        v, g = obj.evaluate_flat(flat, with_grad, threads)
        dt = np.asarray(arrays[0]).dtype
        if not with_grad:
            return np.asarray(v, dtype=dt)
        gs = obj.split(g)
        return (np.asarray(v, dtype=dt),
                tuple(np.asarray(gi, dtype=dt).reshape(np.shape(a)) for gi, a in zip(gs, arrays)))

    def _check(arrays):
        if len(arrays) != n_in:
            raise TypeError(f"expected {n_in} arrays (inputs {obj.inputs}), got {len(arrays)}")

    @jax.custom_vjp
    def f(*arrays):
        _check(arrays)
        dt = jnp.result_type(*arrays)
        return jax.pure_callback(
            lambda *a: host(False, *a), jax.ShapeDtypeStruct((), dt), *arrays
        )

    def fwd(*arrays):
        _check(arrays)
        dt = jnp.result_type(*arrays)
        shapes = (
            jax.ShapeDtypeStruct((), dt),
            tuple(jax.ShapeDtypeStruct(jnp.shape(a), dt) for a in arrays),
        )
        v, gs = jax.pure_callback(lambda *a: host(True, *a), shapes, *arrays)
        return v, gs

    def bwd(gs, ct):
        return tuple(ct * g for g in gs)

    f.defvjp(fwd, bwd)
    f.objective = obj
    return f


def cls(model, inputs=None, **params):
    """Expected CLs (see :func:`anagrad.grad.cls`) as a JAX function of the inputs."""
    return objective(model, "cls", inputs, **params)


def p0(model, inputs=None, **params):
    return objective(model, "p0", inputs, **params)


def z0(model, inputs=None, **params):
    return objective(model, "z0", inputs, **params)


def sigma_mu(model, inputs=None, **params):
    return objective(model, "sigma_mu", inputs, **params)


def observed_cls(model, inputs=None, **params):
    return objective(model, "observed_cls", inputs, **params)
