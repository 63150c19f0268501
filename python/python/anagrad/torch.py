"""PyTorch adapter: anagrad objectives as ``torch.autograd.Function``.

``f = anagrad.torch.objective(model, "cls", inputs=[...])`` returns a function
``f(*tensors) -> 0-d tensor`` (one tensor per input, any shape with the
input's number of elements, any float dtype and device) whose backward pass
is anagrad's exact gradient; ``loss.backward()`` reaches whatever produced the
tensors. Values are computed in float64 on the host and returned in the
first input's dtype and device.

Imported only if PyTorch is installed: ``import anagrad.torch``.
"""

import numpy as np
import torch

from .grad import Objective

__all__ = ["objective", "cls", "p0", "z0", "sigma_mu", "observed_cls", "AnagradLoss"]


class AnagradLoss(torch.autograd.Function):
    """``AnagradLoss.apply(objective, threads, *tensors)``."""

    @staticmethod
    def forward(ctx, obj, threads, *tensors):
        flat = np.concatenate(
            [t.detach().to("cpu", torch.float64).reshape(-1).numpy() for t in tensors]
        )
        with_grad = any(ctx.needs_input_grad[2:])
        v, g = obj.evaluate_flat(flat, with_grad, threads)
        ref = tensors[0]
        if with_grad:
            ctx.grads = [
                torch.as_tensor(gi).to(device=t.device, dtype=t.dtype).reshape(t.shape)
                for gi, t in zip(obj.split(g), tensors)
            ]
        return torch.tensor(v, dtype=ref.dtype, device=ref.device)

    @staticmethod
    def backward(ctx, grad_out):
        return (None, None, *[grad_out * g for g in ctx.grads])


def objective(model, kind="cls", inputs=None, **params):
    """A differentiable scalar function of the inputs' tensors (see
    :class:`anagrad.grad.Objective` for ``kind``, ``inputs`` and ``params``)."""
    threads = params.pop("threads", None)
    obj = Objective(model, kind, inputs, **params)

    def f(*tensors):
        if len(tensors) != len(obj.inputs):
            raise TypeError(
                f"expected {len(obj.inputs)} tensors (inputs {obj.inputs}), got {len(tensors)}"
            )
        return AnagradLoss.apply(obj, threads, *tensors)

    f.objective = obj
    return f


def cls(model, inputs=None, **params):
    """Expected CLs (see :func:`anagrad.grad.cls`) as a PyTorch function of the inputs."""
    return objective(model, "cls", inputs, **params)


def p0(model, inputs=None, **params):
    return objective(model, "p0", inputs, **params)


def z0(model, inputs=None, **params):
    return objective(model, "z0", inputs, **params)


def sigma_mu(model, inputs=None, **params):
    return objective(model, "sigma_mu", inputs, **params)


def observed_cls(model, inputs=None, **params):
    return objective(model, "observed_cls", inputs, **params)
