"""Exceptions raised by anagrad, each carrying the library's located message.

Names follow ``pyhf.exceptions`` where pyhf has the same failure, so that
``except pyhf.exceptions.X`` blocks keep working after ``import anagrad as pyhf``.
"""

__all__ = [
    "AnagradError",
    "InvalidSpecification",
    "InvalidPatch",
    "InvalidPatchSet",
    "InvalidPatchLookup",
    "PatchSetVerificationError",
    "InvalidInput",
    "InvalidModel",
    "UnspecifiedPOI",
    "FailedMinimization",
    "AmbiguousMinimum",
    "NoMinimum",
]


class AnagradError(Exception):
    """Base class of every anagrad error."""


class InvalidSpecification(AnagradError, ValueError):
    """A workspace (or model spec) that is not a valid HistFactory workspace.

    The message starts with the JSON location, e.g.
    ``channels[1].samples[0].modifiers[2] (histosys 'jes'): hi_data has 3 bins, ...``.
    """


class InvalidPatch(AnagradError, ValueError):
    """A JSON patch (or patchset patch) that cannot be applied."""


class InvalidPatchSet(InvalidPatch):
    """A patchset that is not valid (pyhf's name)."""


class InvalidPatchLookup(InvalidPatch, KeyError):
    """No patch with this name or these values."""

    def __str__(self):  # KeyError would quote the message
        return Exception.__str__(self)


class PatchSetVerificationError(InvalidPatch):
    """The patchset's digest does not match the background-only workspace."""


class InvalidInput(AnagradError, ValueError):
    """Invalid arguments: wrong lengths, unknown names, bad options."""


class InvalidModel(InvalidInput):
    """A model request the workspace cannot satisfy (pyhf's name)."""


class UnspecifiedPOI(InvalidInput):
    """An operation that needs a parameter of interest on a model without one."""


class FailedMinimization(AnagradError, RuntimeError):
    """A fit that did not converge (never returned as a silent result)."""


class AmbiguousMinimum(FailedMinimization):
    """Two distinct minima with (nearly) equal -2 ln L: the gradient through the fit is undefined."""


class NoMinimum(FailedMinimization):
    """The infimum of -2 ln L is not attained (e.g. at the code-2 jump)."""
