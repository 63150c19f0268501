"""Toy-based hypothesis tests (pyhf's ``ToyCalculator``), in shards.

``anagrad.infer.hypotest(..., calctype="toybased", ntoys=N, seed=S)`` runs a
whole ensemble in this process. This module splits one into shards that can
run anywhere (Dask workers, batch jobs, the CLI's ``--shard K/N``) and merges
them back::

    from anagrad.infer import toys
    parts = [toys.distributions(1.0, data, model, ntoys=10_000, seed=7, shard=(k, 4))
             for k in range(4)]                # e.g. four Dask tasks
    d = toys.merge(parts)                       # == toys.distributions(..., shard=None), bit for bit
    cls_obs, band = toys.result(d, return_expected_set=True)   # pyhf's return shapes
    d.result()                                  # all of it as a dict (CLs_obs, CLs_exp, ..., failed)

Semantics (pyhf 0.7.6's ``ToyCalculator``): the toys are drawn at the
conditional fits to the observed data (POI = ``poi_test`` for
signal-plus-background, POI = 0 for background; for ``q0``: 0 and 1), every
toy is refitted with the global fit, p-values are ``#(t >= t_obs) / N``, and
the expected band holds the percentiles of CLs at the background toys'
statistics. Toy ``i`` of each hypothesis has its own generator seeded from
``(seed, hypothesis, i)``, so a result depends only on the seed, never on the
number of threads or shards. A toy whose fits fail is counted (``failed``),
listed in the distributions, and left out of the p-values.

:class:`ToyDistributions` objects pickle exactly (Dask moves them between
processes) and read and write the CLI's ``distributions*.json``
(``ToyDistributions.from_json`` / ``to_json``).
"""

import operator

from .. import exceptions
from .._core import ToyDistributions
from .._core import toys_merge as _toys_merge
from ._common import _farr, _setup_args

__all__ = ["ToyDistributions", "distributions", "merge", "result"]

_U64 = 1 << 64


def _check_ntoys(ntoys):
    try:
        n = operator.index(ntoys)
    except TypeError:
        raise exceptions.InvalidInput(f"ntoys must be an integer, not {ntoys!r}") from None
    if n < 1:
        raise exceptions.InvalidInput(f"ntoys must be at least 1, not {n}")
    return n


def _check_seed(seed):
    try:
        s = operator.index(seed)
    except TypeError:
        raise exceptions.InvalidInput(f"seed must be an integer, not {seed!r}") from None
    if not 0 <= s < _U64:
        raise exceptions.InvalidInput(f"seed must be in [0, 2**64), not {s}")
    return s


def _check_shard(shard):
    """``(index, count)``, zero-based, from ``None`` (everything), a pair
    ``(k, n)`` with ``0 <= k < n``, or the CLI's one-based string ``"K/N"``."""
    if shard is None:
        return (0, 1)
    if isinstance(shard, str):
        k, sep, n = shard.partition("/")
        try:
            k, n = int(k), int(n)
        except ValueError:
            sep = ""
        if not sep or not 1 <= k <= n:
            raise exceptions.InvalidInput(
                f"shard {shard!r}: expected 'K/N' with 1 <= K <= N (one-based, as the CLI)"
            )
        return (k - 1, n)
    try:
        k, n = (operator.index(x) for x in shard)
    except (TypeError, ValueError):
        raise exceptions.InvalidInput(
            f"shard must be a pair (k, n) with 0 <= k < n, not {shard!r}"
        ) from None
    if not 0 <= k < n:
        raise exceptions.InvalidInput(
            f"shard ({k}, {n}): expected (k, n) with 0 <= k < n (zero-based: toys i % n == k)"
        )
    return (k, n)


def distributions(
    poi_test,
    data,
    pdf,
    init_pars=None,
    par_bounds=None,
    fixed_params=None,
    *,
    test_stat="qtilde",
    ntoys=2000,
    seed=0,
    shard=None,
    track_progress=False,
    threads=None,
):
    """The two toy distributions at ``poi_test`` and the observed statistic
    (pyhf's ``ToyCalculator(...).distributions(poi_test)`` and
    ``.teststatistic(poi_test)``), for all ``ntoys`` toys per hypothesis or
    for one shard of them.

    ``seed``: master seed (an integer in ``[0, 2**64)``; the CLI's ``--seed``).
    ``shard``: ``None`` (all toys), ``(k, n)`` with ``0 <= k < n`` (zero-based:
    the toys ``i`` with ``i % n == k``), or ``"K/N"`` (one-based, as the CLI's
    ``--shard``). ``track_progress``: a progress bar on stderr. ``threads``:
    Rust threads for this call (default: ``anagrad.set_num_threads``).

    Returns a :class:`ToyDistributions` (picklable; :func:`merge` combines
    shards; ``.result()`` gives the p-values).
    """
    ntoys = _check_ntoys(ntoys)
    seed = _check_seed(seed)
    shard = _check_shard(shard)
    return pdf._core.toy_distributions(
        float(poi_test),
        _farr(data),
        *_setup_args(pdf, init_pars, par_bounds, fixed_params),
        test_stat,
        ntoys,
        seed,
        shard,
        bool(track_progress),
        threads,
    )


def merge(parts, *, complete=True):
    """Merges shards of one ensemble (same model, data, test, seed and
    ``ntoys``; any order) into the distributions of the unsharded run, bit
    for bit. With ``complete=True`` (default) every shard must be there;
    ``complete=False`` accepts a subset (its p-values are then those of the
    toys held)."""
    parts = list(parts)
    if not parts:
        raise exceptions.InvalidInput("toys merge: nothing to merge")
    for p in parts:
        if not isinstance(p, ToyDistributions):
            raise exceptions.InvalidInput(
                f"toys merge: expected ToyDistributions, got {type(p).__name__}"
            )
    d = _toys_merge(parts)
    if complete and not d.is_complete():
        held = ", ".join(f"{k + 1}/{n}" for k, n in d.shards)
        raise exceptions.InvalidInput(
            f"toys merge: the shards held ({held}) cover "
            f"{len(d.background['indices'])} of {d.ntoys} toys per hypothesis "
            "(pass complete=False to accept a partial ensemble)"
        )
    return d


def result(dists, return_tail_probs=False, return_expected=False, return_expected_set=False):
    """pyhf's ``hypotest`` return tuple from toy distributions: ``CLs_obs``
    (for ``q0``: p0), then ``[CLsb_obs, CLb_obs]`` (``[CLb_obs]`` for q0) if
    ``return_tail_probs``, ``CLs_exp`` if ``return_expected``, the 5-element
    expected band (pyhf's order) if ``return_expected_set``."""
    from . import _format_hypotest

    return _format_hypotest(dists.result(), return_tail_probs, return_expected,
                            return_expected_set)
