"""Scans over the patches of a patchset, serially or on a Dask cluster.

``anagrad.scan(workspace, patchset, client=client)`` maps one task per patch
over ``dask.distributed`` (any ``Client``: a ``LocalCluster`` on a laptop,
``dask_jobqueue.SLURMCluster`` / ``HTCondorCluster`` on a batch system) and
returns the same table as ``client=None`` (the serial loop in this process):
the fits are deterministic, so every number is identical.

Each task runs with ``threads`` Rust threads (default 1), so a worker with
``nthreads=k`` runs k patches at once without oversubscribing its cores.

On a cluster (dask-jobqueue)::

    from dask_jobqueue import SLURMCluster
    from dask.distributed import Client
    cluster = SLURMCluster(cores=8, processes=8, memory="16GB", walltime="01:00:00")
    cluster.scale(jobs=10)              # 10 batch jobs x 8 single-threaded workers
    client = Client(cluster)
    table = anagrad.scan(ws, patchset, what="upper_limit", client=client)

The workers need the same ``anagrad`` wheel installed (``pip install ./python``
in the environment the job script activates).
"""

import json

import numpy as np

from . import exceptions

__all__ = ["scan", "scan_task"]

_WHATS = ("hypotest", "upper_limit", "fit", "significance")
_BAND = ("m2", "m1", "", "p1", "p2")
_cache = {}


def _parsed(ws_json, ps_json):
    """Parsed workspace and patchset, cached per worker process (keyed by the
    JSON texts' hashes: a worker gets the same broadcast texts for every task)."""
    from .workspace import PatchSet, Workspace

    key = (hash(ws_json), len(ws_json), hash(ps_json), len(ps_json))
    hit = _cache.get(key)
    if hit is None:
        if len(_cache) > 8:
            _cache.clear()
        hit = (Workspace(json.loads(ws_json)), PatchSet(json.loads(ps_json)))
        _cache[key] = hit
    return hit


def _band(prefix, values):
    return {f"{prefix}_{b}" if b else prefix: float(v) for b, v in zip(_BAND, values)}


def scan_task(ws_json, ps_json, name, options):
    """One row of the table (runs on a worker): patch ``name`` applied to the
    background-only workspace, the model built, ``options["what"]`` computed."""
    from . import infer

    ws, ps = _parsed(ws_json, ps_json)
    patch = ps[name]
    row = {"patch": name}
    row.update({label: v for label, v in zip(ps.labels, patch.values)})
    pws = ps.apply(ws, name, verify=False)
    model = pws.model(
        measurement_name=options.get("measurement_name"),
        modifier_settings=options.get("modifier_settings"),
    )
    data = np.asarray(pws.data(model))
    what, threads = options["what"], options.get("threads", 1)
    test_stat = options.get("test_stat", "qtilde")
    if what == "hypotest":
        r = model._core.hypotest(
            [float(options.get("poi_test", 1.0))], data, None, None, None, test_stat, threads
        )[0]
        row["CLs_obs"] = float(r["CLs_obs"])
        row.update(_band("CLs_exp", r["CLs_exp"]))
        row["CLsb_obs"] = float(r["CLsb_obs"])
        row["CLb_obs"] = float(r["CLb_obs"])
    elif what == "upper_limit":
        scan = options.get("scan")
        r = model._core.upper_limit(
            data, None if scan is None else [float(x) for x in scan],
            float(options.get("level", 0.05)), None, None, None, test_stat, None,
            1e-10, 1e-12, threads,
        )
        row["obs_limit"] = float(r["obs_limit"])
        row.update(_band("exp_limit", r["exp_limits"]))
    elif what == "fit":
        r = model._core.fit(data, None, None, None, None, True, False, threads)
        poi = model.config.poi_index
        row["twice_nll"] = float(r["twice_nll"])
        row["mu_hat"] = float(r["pars"][poi])
        row["mu_hat_unc"] = float(r["uncertainties"][poi])
        row["minima"] = int(r["minima"])
    elif what == "significance":
        r = model._core.significance(data, threads)
        row["p0_obs"] = float(r["p0_obs"])
        row["Z_obs"] = float(r["Z_obs"])
        row.update(_band("Z_exp", r["Z_exp"]))
    return row


def scan(
    workspace,
    patchset,
    patches=None,
    *,
    what="hypotest",
    poi_test=1.0,
    test_stat="qtilde",
    level=0.05,
    scan=None,
    measurement_name=None,
    modifier_settings=None,
    client=None,
    threads=1,
    verify=True,
    errors="raise",
    as_dataframe=True,
):
    """Hypothesis tests (``what="hypotest"``), upper limits (``"upper_limit"``),
    fits (``"fit"``) or discovery significances (``"significance"``) for every
    patch of ``patchset`` (or the names/value tuples in ``patches``) applied
    to the background-only ``workspace``.

    ``client``: a ``dask.distributed.Client`` (one task per patch; the
    workspace and patchset are broadcast once), or ``None`` for a serial loop
    in this process. ``threads``: Rust threads per task. ``errors``: ``"raise"``,
    or ``"record"`` to put the message in an ``error`` column and go on.

    Returns a ``pandas.DataFrame`` (if pandas is installed and
    ``as_dataframe``) or a list of dicts, one row per patch in the order
    given: ``patch``, the patchset's label values, then ``CLs_obs``,
    ``CLs_exp_m2 … CLs_exp_p2`` (pyhf's band order), ``CLsb_obs``, ``CLb_obs``;
    or ``obs_limit``, ``exp_limit_m2 … exp_limit_p2``; or ``twice_nll``,
    ``mu_hat``, ``mu_hat_unc``, ``minima``; or ``p0_obs``, ``Z_obs``, ``Z_exp_*``.
    """
    from .workspace import PatchSet, Workspace

    if what not in _WHATS:
        raise exceptions.InvalidInput(f"scan: what must be one of {_WHATS}, not {what!r}")
    if errors not in ("raise", "record"):
        raise exceptions.InvalidInput("scan: errors must be 'raise' or 'record'")
    if not isinstance(workspace, Workspace):
        workspace = Workspace(workspace)
    if not isinstance(patchset, PatchSet):
        patchset = PatchSet(patchset)
    if verify:
        patchset.verify(workspace)
    names = [patchset[p].name for p in patches] if patches is not None else [
        p.name for p in patchset.patches
    ]
    options = {
        "what": what,
        "poi_test": poi_test,
        "test_stat": test_stat,
        "level": level,
        "scan": None if scan is None else [float(x) for x in scan],
        "measurement_name": measurement_name,
        "modifier_settings": modifier_settings,
        "threads": threads,
    }
    ws_json = json.dumps(dict(workspace))
    ps_json = json.dumps(patchset._spec)
    task = scan_task if errors == "raise" else _recording_task

    if client is None:
        rows = [task(ws_json, ps_json, n, options) for n in names]
    else:
        ws_f = client.scatter(ws_json, broadcast=True)
        ps_f = client.scatter(ps_json, broadcast=True)
        futures = client.map(
            task, [ws_f] * len(names), [ps_f] * len(names), names, [options] * len(names),
            pure=False,
        )
        rows = client.gather(futures)
    if as_dataframe:
        try:
            import pandas as pd
        except ImportError:
            return rows
        return pd.DataFrame(rows)
    return rows


def _recording_task(ws_json, ps_json, name, options):
    try:
        return scan_task(ws_json, ps_json, name, options)
    except exceptions.AnagradError as e:
        return {"patch": name, "error": f"{type(e).__name__}: {e}"}
