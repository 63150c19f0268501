"""A minimal numpy "tensorlib", so that pyhf scripts calling
``pyhf.tensorlib.astensor(...)`` / ``pyhf.get_backend()`` run unchanged.

anagrad computes in Rust (f64); arrays in and out are numpy arrays whatever
backend name a script asks for.
"""

import numpy as np

__all__ = ["numpy_backend", "tensorlib", "set_backend", "get_backend"]


class numpy_backend:
    """The subset of pyhf's ``numpy_backend`` that analysis scripts use."""

    name = "numpy"
    precision = "64b"
    dtypemap = {"float": np.float64, "int": np.int64, "bool": np.bool_}
    default_do_grad = False

    def astensor(self, tensor_in, dtype="float"):
        return np.asarray(tensor_in, dtype=self.dtypemap[dtype])

    def tolist(self, tensor_in):
        return np.asarray(tensor_in).tolist()

    def concatenate(self, sequence, axis=0):
        return np.concatenate(sequence, axis=axis)

    def stack(self, sequence, axis=0):
        return np.stack(sequence, axis=axis)

    def sqrt(self, x):
        return np.sqrt(x)

    def exp(self, x):
        return np.exp(x)

    def log(self, x):
        return np.log(x)

    def sum(self, x, axis=None):
        return np.sum(x, axis=axis)

    def shape(self, x):
        return np.shape(x)

    def ones(self, shape, dtype="float"):
        return np.ones(shape, dtype=self.dtypemap[dtype])

    def zeros(self, shape, dtype="float"):
        return np.zeros(shape, dtype=self.dtypemap[dtype])

    def isfinite(self, x):
        return np.isfinite(x)

    def __repr__(self):
        return "<anagrad numpy tensorlib>"


class _Optimizer:
    name = "anagrad-newton"

    def __repr__(self):
        return "<anagrad bounded Newton optimizer (Rust, exact Hessians)>"


tensorlib = numpy_backend()
optimizer = _Optimizer()


def set_backend(backend="numpy", custom_optimizer=None, precision=None, default=False):
    """Accepted for pyhf compatibility; anagrad always computes in f64 in
    Rust and returns numpy arrays (for gradients in JAX/PyTorch use
    ``anagrad.jax`` / ``anagrad.torch``)."""
    return None


def get_backend(default=False):
    """``(tensorlib, optimizer)`` as pyhf returns them."""
    return tensorlib, optimizer
