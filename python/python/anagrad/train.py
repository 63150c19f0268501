"""Training summary statistics from Python (``anagrad train``), and training
sweeps on Dask.

``anagrad.train.train(config)`` runs the Rust training loop of the CLI's
``anagrad train`` (events → network → bKDE → HistFactory → objective, Adam)
in this process, with the GIL released, and returns its report as a dict::

    cfg = anagrad.train.default_config()          # the embedded default, as a dict
    cfg["training"]["max_steps"] = 20
    report = anagrad.train.train(cfg, out="runs/cls")
    report["best"]["cls"], report["last"]["z0"]

A configuration is a dict with the keys of the TOML file (missing keys take
their defaults), TOML text, or the path of a ``.toml`` file
(``configs/train_default.toml`` documents every key).

``anagrad.sweep(base, grid={"training.objective": [...], "seed": [...]},
client=client)`` trains every combination of the dotted-key overrides, one
task per training on ``dask.distributed`` workers (or serially with
``client=None``), and returns one row per training with its final and best
test metrics. A training is deterministic for a fixed configuration and seed
(the data, the initial weights, the batch order and every reduction), so the
table is the same on any cluster as in the serial loop, except for the
timing columns ``median_step_seconds`` and ``wall_seconds``.
"""

import copy
import itertools
import json
import os
import tempfile

from . import _core, exceptions

__all__ = ["train", "default_config", "load_config", "sweep", "train_task", "METRICS"]

#: The test metrics of a report's ``best`` and ``last`` entries that become
#: the sweep table's ``best_*`` / ``last_*`` columns.
METRICS = ("cls", "z0", "sigma_mu", "generalised_variance", "z_asimov", "bce", "bce_aug")

_reference = []


def _default():
    if not _reference:
        _reference.append(json.loads(_core.train_config(_core.train_default_toml())))
    return _reference[0]


def default_config():
    """The embedded default configuration (``anagrad train`` without a file,
    ``configs/train_default.toml``) as a dict with every key; optional keys
    that are unset (``training.max_steps``, ``optimizer.edges_lr``) are ``None``."""
    return copy.deepcopy(_default())


def _plain(x):
    """numpy scalars and arrays in a configuration, as JSON values."""
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"{type(x).__name__} is not a configuration value")


def _check_keys(d, ref, path):
    """Unknown keys of a dict configuration, named with their dotted path."""
    if not isinstance(d, dict):
        raise exceptions.InvalidInput(
            f"config key `{path or '<root>'}`: a table (dict) is needed, "
            f"got {type(d).__name__}"
        )
    for k, v in d.items():
        key = f"{path}.{k}" if path else str(k)
        if k not in ref:
            raise exceptions.InvalidInput(
                f"config key `{key}`: unknown key, expected one of {sorted(ref)}"
            )
        if isinstance(ref[k], dict):
            _check_keys(v, ref[k], key)


def _source(config):
    """``(text, is_json)`` of a configuration given as a dict, TOML text or a path."""
    if isinstance(config, dict):
        _check_keys(config, _default(), "")
        try:
            return json.dumps(config, default=_plain, allow_nan=False), True
        except (TypeError, ValueError) as e:
            raise exceptions.InvalidInput(f"config: {e}") from None
    if isinstance(config, os.PathLike) or (
        isinstance(config, str) and "\n" not in config and "=" not in config
    ):
        path = os.fspath(config)
        try:
            with open(path, encoding="utf8") as f:
                return f.read(), False
        except OSError as e:
            raise exceptions.InvalidInput(f"config {path}: cannot read: {e}") from None
    if isinstance(config, str):
        return config, False
    raise exceptions.InvalidInput(
        f"config: a dict, TOML text or a path is needed, not {type(config).__name__}"
    )


def load_config(config=None):
    """The complete, validated configuration (dict, TOML text or path; ``None``:
    the default) as a dict with every key, as :func:`default_config` shows it.

    Raises :class:`anagrad.exceptions.InvalidInput` naming the key, e.g.
    ``config key `training.batch_size`: 3000 exceeds the training events per
    process (toy.n_train = 2000)``.
    """
    if config is None:
        return default_config()
    text, is_json = _source(config)
    return json.loads(_core.train_config(text, is_json))


def train(config=None, out=None, *, figures=False, progress=False, threads=None):
    """Trains ``config`` (a dict, TOML text or a path; ``None``: the embedded
    default) from scratch and returns its report as a dict.

    ``out``: the folder the CLI writes (``config.toml``, ``metrics.json``,
    ``metrics.csv``, ``summary.json``, the checkpoint and, with ``figures``,
    the figures), or ``None`` for a temporary folder that is removed again
    (the report then has ``out=None`` and no ``files``). ``progress``: the
    progress bar on stderr. ``threads``: Rust threads of the run (``None``:
    :func:`anagrad.set_num_threads`'s default).

    The report (``summary.json``): ``objective``, ``seed``, ``steps``,
    ``n_params``, ``median_step_seconds``, ``wall_seconds``, ``best_step``,
    ``best`` and ``last`` (test metrics at the best step by the objective's
    metric, and after the last step: ``cls``, ``z0``, ``sigma_mu``,
    ``generalised_variance``, ``z_asimov``, ``bce``, ``bce_aug`` — ``None``
    where a fit failed or the metric is undefined — plus ``edges`` and
    ``yields``), ``out`` and ``files``.
    """
    text, is_json = _source(default_config() if config is None else config)
    if out is None:
        with tempfile.TemporaryDirectory(prefix="anagrad-train-") as d:
            report = json.loads(_core.train(text, is_json, d, figures, progress, threads))
        report["out"] = None
        report["files"] = []
        return report
    return json.loads(_core.train(text, is_json, os.fspath(out), figures, progress, threads))


# ------------------------------------------------------------------ sweeps


def _runs(grid):
    """The list of override dicts: the Cartesian product of a dict of lists
    (the last key varies fastest), or a list of dicts as given."""
    if grid is None:
        return [{}]
    if isinstance(grid, dict):
        keys = list(grid)
        values = []
        for k in keys:
            v = grid[k]
            if isinstance(v, (str, bytes, dict)) or not hasattr(v, "__iter__"):
                raise exceptions.InvalidInput(
                    f"sweep: grid[{k!r}] must be a list of values, not {type(v).__name__}"
                )
            v = list(v)
            if not v:
                raise exceptions.InvalidInput(f"sweep: grid[{k!r}] is empty")
            values.append(v)
        return [dict(zip(keys, combo)) for combo in itertools.product(*values)]
    runs = list(grid)
    if not all(isinstance(r, dict) for r in runs):
        raise exceptions.InvalidInput(
            "sweep: grid must be a dict of lists or a list of override dicts"
        )
    return [dict(r) for r in runs]


def _override(cfg, key, value):
    """Sets the dotted ``key`` of the complete configuration ``cfg``."""
    if not isinstance(key, str) or not key:
        raise exceptions.InvalidInput(f"sweep: grid keys are dotted strings, not {key!r}")
    parts = key.split(".")
    d = cfg
    for i, p in enumerate(parts):
        if not isinstance(d, dict) or p not in d:
            known = sorted(d) if isinstance(d, dict) else []
            raise exceptions.InvalidInput(
                f"sweep: grid key `{key}`: `{'.'.join(parts[:i + 1])}` is not a "
                f"configuration key (expected one of {known})"
            )
        if i == len(parts) - 1:
            if isinstance(d[p], dict):
                raise exceptions.InvalidInput(
                    f"sweep: grid key `{key}` is a table; override its keys instead"
                )
            d[p] = _plain(value) if hasattr(value, "tolist") else value
        else:
            d = d[p]


def train_task(config_json, overrides, options):
    """One row of the sweep table (runs on a worker): the complete
    configuration ``config_json`` (JSON text) trained with ``options``
    (``threads``, ``out`` (this run's folder or None), ``figures``)."""
    report = train(
        json.loads(config_json), out=options.get("out"), figures=options.get("figures", False),
        threads=options.get("threads", 1),
    )
    return _row(overrides, report)


def _row(overrides, report):
    row = dict(overrides)
    row.setdefault("objective", report["objective"])
    row.setdefault("seed", report["seed"])
    row["steps"] = report["steps"]
    row["n_params"] = report["n_params"]
    row["best_step"] = report["best_step"]
    for which in ("best", "last"):
        m = report[which] or {}
        for k in METRICS:
            v = m.get(k)
            row[f"{which}_{k}"] = None if v is None else float(v)
    row["median_step_seconds"] = report["median_step_seconds"]
    row["wall_seconds"] = report["wall_seconds"]
    if report["out"] is not None:
        row["out"] = report["out"]
    return row


def _recording_task(config_json, overrides, options):
    try:
        return train_task(config_json, overrides, options)
    except exceptions.AnagradError as e:
        return dict(overrides, error=f"{type(e).__name__}: {e}")


def sweep(
    base_config=None,
    grid=None,
    *,
    client=None,
    out=None,
    threads=1,
    figures=False,
    errors="raise",
    as_dataframe=True,
):
    """Trains ``base_config`` (dict, TOML text or path; ``None``: the default)
    once per combination of ``grid``'s overrides and returns one row per
    training.

    ``grid``: a dict of dotted configuration keys to lists of values, e.g.
    ``{"training.objective": ["cls", "bce"], "seed": [0, 1, 2]}`` (the
    Cartesian product, the last key varying fastest), or a list of override
    dicts (one training each). ``client``: a ``dask.distributed.Client`` (one
    task per training), or ``None`` for a serial loop in this process.
    ``threads``: Rust threads per training (default 1, so a worker with
    ``nthreads=k`` runs k trainings without oversubscribing its cores).
    ``out``: a folder that gets one sub-folder per training (``run-000``, …,
    in row order, each as the CLI writes it; on a cluster it must be on a file
    system the workers share), or ``None`` to keep no files. ``errors``:
    ``"raise"``, or ``"record"`` to put the message in an ``error`` column and
    go on.

    Returns a ``pandas.DataFrame`` (if pandas is installed and
    ``as_dataframe``) or a list of dicts, in the order of the combinations:
    the override columns (named by their dotted keys), ``objective``,
    ``seed``, ``steps``, ``n_params``, ``best_step``, ``best_<metric>`` and
    ``last_<metric>`` for each of :data:`METRICS` (``None`` where undefined),
    ``median_step_seconds``, ``wall_seconds`` and, with ``out``, ``out``.
    Every column except the two timings is identical for any ``client`` and
    ``threads``: a training is bit-for-bit deterministic for its
    configuration.
    """
    from ._scan import _table

    if errors not in ("raise", "record"):
        raise exceptions.InvalidInput("sweep: errors must be 'raise' or 'record'")
    try:
        threads = int(threads)
    except (TypeError, ValueError):
        threads = 0
    if threads < 1:
        raise exceptions.InvalidInput("sweep: threads must be an integer >= 1")
    base = load_config(base_config)
    runs = _runs(grid)
    configs = []
    for ov in runs:
        cfg = copy.deepcopy(base)
        for k, v in ov.items():
            _override(cfg, k, v)
        text = json.dumps(cfg, allow_nan=False)
        if errors == "raise":
            _core.train_config(text, True)  # every configuration is valid before any runs
        configs.append(text)
    width = max(3, len(str(len(runs) - 1)))
    options = []
    for i in range(len(runs)):
        o = {"threads": threads, "figures": bool(figures), "out": None}
        if out is not None:
            o["out"] = os.path.join(os.fspath(out), f"run-{i:0{width}d}")
        options.append(o)
    task = train_task if errors == "raise" else _recording_task
    if client is None:
        rows = [task(c, ov, o) for c, ov, o in zip(configs, runs, options)]
    else:
        futures = client.map(task, configs, runs, options, pure=False)
        rows = client.gather(futures)
    return _table(rows, as_dataframe)
