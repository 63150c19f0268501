"""anagrad: differentiable HistFactory inference in Rust, with pyhf's API.

A pyhf script changes its import and little else::

    import anagrad as pyhf
    ws = pyhf.Workspace(spec)
    model = ws.model()
    data = ws.data(model)
    cls_obs, cls_exp = pyhf.infer.hypotest(1.0, data, model, return_expected_set=True)

Beyond pyhf: exact gradients w.r.t. every template input (:mod:`anagrad.grad`,
with :mod:`anagrad.jax` and :mod:`anagrad.torch` adapters), scans over
patchsets on Dask (:func:`anagrad.scan`), training of summary statistics
(:mod:`anagrad.train`) and training sweeps on Dask (:func:`anagrad.sweep`), and
per-call control of the Rust threads (:func:`set_num_threads`, ``threads=``).
"""

from . import _core
from . import exceptions
from ._core import get_num_threads, set_num_threads
from .tensorlib import get_backend, set_backend, tensorlib, optimizer
from .workspace import Model, ModelConfig, Patch, PatchSet, Workspace, digest
from . import infer
from . import simplemodels
from . import grad
from ._scan import scan
from . import train
from .train import sweep

__version__ = _core.__version__

__all__ = [
    "Workspace",
    "Model",
    "ModelConfig",
    "PatchSet",
    "Patch",
    "infer",
    "grad",
    "simplemodels",
    "exceptions",
    "scan",
    "train",
    "sweep",
    "digest",
    "set_backend",
    "get_backend",
    "tensorlib",
    "optimizer",
    "set_num_threads",
    "get_num_threads",
    "__version__",
]
