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

Toy ensembles (``calctype="toybased"``) are split further: every patch's
ensemble becomes ``shards_per_point`` tasks (toys ``i % K == k``, each seeded
per toy, see :mod:`anagrad.infer.toys`) and one merge task, so a few patches
with many toys still fill a cluster::

    table = anagrad.scan(ws, patchset, calctype="toybased", ntoys=20_000, seed=1,
                         shards_per_point=50, client=client)

Each row equals ``anagrad.infer.hypotest(poi_test, data, model,
calctype="toybased", ntoys=ntoys, seed=seed)`` on that patch, bit for bit, for
any number of shards and workers.
"""

import json

import numpy as np

from . import exceptions

__all__ = ["scan", "scan_task", "toy_shard_task", "toy_merge_task"]

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


def _patch_model(ws_json, ps_json, name, options):
    """``(row prefix, model, data)`` of patch ``name`` (runs on a worker)."""
    ws, ps = _parsed(ws_json, ps_json)
    patch = ps[name]
    row = {"patch": name}
    row.update({label: v for label, v in zip(ps.labels, patch.values)})
    pws = ps.apply(ws, name, verify=False)
    model = pws.model(
        measurement_name=options.get("measurement_name"),
        modifier_settings=options.get("modifier_settings"),
    )
    return row, model, np.asarray(pws.data(model))


def scan_task(ws_json, ps_json, name, options):
    """One row of the table (runs on a worker): patch ``name`` applied to the
    background-only workspace, the model built, ``options["what"]`` computed."""
    row, model, data = _patch_model(ws_json, ps_json, name, options)
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


def toy_shard_task(ws_json, ps_json, name, options, shard):
    """The toy distributions of shard ``shard = (k, n)`` of patch ``name``'s
    ensemble (runs on a worker); a picklable ``ToyDistributions``."""
    from .infer import toys

    _, model, data = _patch_model(ws_json, ps_json, name, options)
    return toys.distributions(
        float(options.get("poi_test", 1.0)), data, model,
        test_stat=options.get("test_stat", "qtilde"), ntoys=options["ntoys"],
        seed=options["seed"], shard=shard, threads=options.get("threads", 1),
    )


def _toy_row(row, d):
    """The table's row from the complete distributions ``d`` of a patch."""
    r = d.result()
    row = dict(row)
    row["CLs_obs"] = float(r["CLs_obs"])
    row.update(_band("CLs_exp", r["CLs_exp"]))
    row["CLsb_obs"] = float(r["CLsb_obs"])
    row["CLb_obs"] = float(r["CLb_obs"])
    row["teststat"] = float(r["teststat"])
    row["ntoys"] = int(d.ntoys)
    row["failed_sb"], row["failed_b"] = (int(x) for x in r["failed"])
    return row


def toy_merge_task(row, parts):
    """Merges one patch's shards into its row of the table."""
    from .infer import toys

    errs = [p for p in parts if isinstance(p, str)]
    if errs:
        return dict(row, error=errs[0])
    return _toy_row(row, toys.merge(parts))


def _recording_toy_shard_task(ws_json, ps_json, name, options, shard):
    try:
        return toy_shard_task(ws_json, ps_json, name, options, shard)
    except exceptions.AnagradError as e:
        return f"{type(e).__name__}: {e}"


def _recording_toy_merge_task(row, parts):
    try:
        return toy_merge_task(row, parts)
    except exceptions.AnagradError as e:
        return dict(row, error=f"{type(e).__name__}: {e}")


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
    calctype="asymptotics",
    ntoys=2000,
    seed=0,
    shards_per_point=1,
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

    ``calctype="toybased"`` (with ``what="hypotest"``): CLs from ``ntoys``
    toys per hypothesis with master ``seed`` (the same for every patch, so a
    row is reproduced by ``anagrad.infer.hypotest(..., calctype="toybased",
    ntoys=ntoys, seed=seed)``), each patch's ensemble split into
    ``shards_per_point`` tasks and merged on a worker; the rows also have
    ``teststat`` (observed), ``ntoys``, ``failed_sb`` and ``failed_b`` (toys
    whose fits failed, left out of the p-values). The table is identical for
    any ``shards_per_point``, ``client`` and ``threads``.
    """
    from .infer import toys as _toys
    from .workspace import PatchSet, Workspace

    if what not in _WHATS:
        raise exceptions.InvalidInput(f"scan: what must be one of {_WHATS}, not {what!r}")
    if errors not in ("raise", "record"):
        raise exceptions.InvalidInput("scan: errors must be 'raise' or 'record'")
    if calctype not in ("asymptotics", "toybased"):
        raise exceptions.InvalidInput(
            f"scan: calctype must be 'asymptotics' or 'toybased', not {calctype!r}"
        )
    toybased = calctype == "toybased"
    if toybased:
        if what != "hypotest":
            raise exceptions.InvalidInput(
                f"scan: calctype='toybased' computes what='hypotest', not {what!r}"
            )
        ntoys = _toys._check_ntoys(ntoys)
        seed = _toys._check_seed(seed)
        try:
            shards_per_point = int(shards_per_point)
        except (TypeError, ValueError):
            shards_per_point = 0
        if not 1 <= shards_per_point <= ntoys:
            raise exceptions.InvalidInput(
                f"scan: shards_per_point must be an integer in [1, ntoys = {ntoys}]"
            )
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
    if toybased:
        options.update(ntoys=ntoys, seed=seed)
        rows = _toy_rows(ws_json, ps_json, patchset, names, options, shards_per_point,
                         client, errors)
        return _table(rows, as_dataframe)
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
    return _table(rows, as_dataframe)


def _table(rows, as_dataframe):
    if as_dataframe:
        try:
            import pandas as pd
        except ImportError:
            return rows
        return pd.DataFrame(rows)
    return rows


def _toy_rows(ws_json, ps_json, patchset, names, options, nshards, client, errors):
    """One toy-based row per patch: ``nshards`` shard tasks per patch, then
    a merge task per patch (on the cluster, or serially here)."""
    shard_task, merge_task = (
        (toy_shard_task, toy_merge_task) if errors == "raise"
        else (_recording_toy_shard_task, _recording_toy_merge_task)
    )
    prefixes = []
    for name in names:
        row = {"patch": name}
        row.update({label: v for label, v in zip(patchset.labels, patchset[name].values)})
        prefixes.append(row)
    shards = [(k, nshards) for k in range(nshards)]
    if client is None:
        return [
            merge_task(row, [shard_task(ws_json, ps_json, name, options, s) for s in shards])
            for row, name in zip(prefixes, names)
        ]
    ws_f = client.scatter(ws_json, broadcast=True)
    ps_f = client.scatter(ps_json, broadcast=True)
    flat = [(name, s) for name in names for s in shards]
    n = len(flat)
    parts = client.map(
        shard_task, [ws_f] * n, [ps_f] * n, [f[0] for f in flat], [options] * n,
        [f[1] for f in flat], pure=False,
    )
    merged = [
        client.submit(merge_task, row, parts[i * nshards:(i + 1) * nshards], pure=False)
        for i, row in enumerate(prefixes)
    ]
    return client.gather(merged)


def _recording_task(ws_json, ps_json, name, options):
    try:
        return scan_task(ws_json, ps_json, name, options)
    except exceptions.AnagradError as e:
        return {"patch": name, "error": f"{type(e).__name__}: {e}"}
