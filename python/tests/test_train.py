"""anagrad.train (the Rust training loop from Python) and anagrad.sweep: dict,
TOML text and path configurations train identically; bad keys and values raise
InvalidInput naming the key; a sweep on a Dask LocalCluster (2 worker
processes) equals the serial sweep and the single trainings it is made of."""

import json

import pytest

import anagrad
from anagrad.exceptions import InvalidInput
from conftest import REPO

# a few milliseconds per training: 4 steps of 100 events per process, a
# 2→16→1 network, 3 bins, test metrics after every other step
TINY_TOML = """
seed = 3
[toy]
n_train = 200
n_test = 300
[network]
hidden = [16]
[histogram]
bins = 3
[training]
objective = "cls"
batch_size = 100
epochs = 2
eval_every = 2
"""

TINY = {
    "seed": 3,
    "toy": {"n_train": 200, "n_test": 300},
    "network": {"hidden": [16]},
    "histogram": {"bins": 3},
    "training": {"objective": "cls", "batch_size": 100, "epochs": 2, "eval_every": 2},
}

TIMINGS = ("median_step_seconds", "wall_seconds")


def deterministic(report):
    return {k: v for k, v in report.items() if k not in TIMINGS + ("out", "files")}


def test_default_config_round_trips():
    cfg = anagrad.train.default_config()
    assert cfg["training"]["objective"] == "cls"
    assert cfg["network"]["hidden"] == [1024, 1024]
    assert cfg["training"]["max_steps"] is None
    assert anagrad.train.load_config(cfg) == cfg
    assert anagrad.train.load_config() == cfg
    odd = anagrad.train.load_config({"optimizer": {"lr": 0.1 + 0.2, "edges_lr": 1}})
    assert odd["optimizer"]["lr"] == 0.1 + 0.2 and odd["optimizer"]["edges_lr"] == 1.0
    assert anagrad.train.load_config(str(REPO / "configs" / "train_default.toml")) == cfg
    cfg["seed"] = 99  # a copy: the next call is unchanged
    assert anagrad.train.default_config()["seed"] == 0


def test_dict_toml_and_path_configs_agree(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML)
    full = anagrad.train.load_config(TINY)
    assert full == anagrad.train.load_config(TINY_TOML) == anagrad.train.load_config(path)
    assert full == anagrad.train.load_config(str(path))
    assert full["optimizer"]["lr"] == 1e-3  # a default filled in

    r_dict = anagrad.train.train(TINY, threads=1)
    r_toml = anagrad.train.train(TINY_TOML, threads=1)
    r_path = anagrad.train.train(path, out=tmp_path / "run", threads=1)
    assert r_dict["steps"] == 4 and r_dict["objective"] == "cls" and r_dict["seed"] == 3
    assert r_dict["best"]["cls"] is not None and 0 < r_dict["last"]["cls"] < 1
    assert len(r_dict["last"]["edges"]) == 4
    assert deterministic(r_dict) == deterministic(r_toml) == deterministic(r_path)
    # the temporary folder is gone; the given one has the CLI's files
    assert r_dict["out"] is None and r_dict["files"] == []
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert deterministic(summary) == deterministic(r_path)
    assert (tmp_path / "run" / "config.toml").exists()
    assert anagrad.train.load_config(tmp_path / "run" / "config.toml") == full


def test_training_is_deterministic_for_any_thread_count():
    cfg = dict(TINY, network={"hidden": [64, 64]})
    reports = [anagrad.train.train(cfg, threads=t) for t in (1, 2, 1)]
    assert deterministic(reports[0]) == deterministic(reports[1]) == deterministic(reports[2])


@pytest.mark.parametrize(
    "config, match",
    [
        ({"training": {"bacth_size": 10}}, r"config key `training\.bacth_size`: unknown key"),
        ({"sed": 1}, r"config key `sed`: unknown key"),
        ({"training": 3}, r"config key `training`: a table"),
        ({"training": {"objective": "accuracy"}},
         r"config key `training\.objective`: unknown variant `accuracy`"),
        ({"seed": 1.5}, r"config key `seed`: invalid type: floating point"),
        ({"network": {"hidden": "x"}}, r"config key `network\.hidden`: invalid type"),
        ({"training": {"batch_size": 20000}},
         r"config key `training\.batch_size`: 20000 exceeds the training events"),
        ({"histogram": {"bandwidth": -0.1}}, r"config key `histogram\.bandwidth`: must be > 0"),
        ({"toy": {"name": "nope"}}, r"nope"),
        ("[training]\nepochs = 0\n", r"config key `training\.epochs`: must be > 0"),
        ("seed = \n", r"config key"),
        ("/no/such/config.toml", r"/no/such/config\.toml: cannot read"),
        (3, r"a dict, TOML text or a path"),
    ],
)
def test_bad_configs_raise_located_errors(config, match):
    with pytest.raises(InvalidInput, match=match):
        anagrad.train.load_config(config)
    with pytest.raises(InvalidInput, match=match):
        anagrad.train.train(config)


def test_sweep_rows_are_the_single_trainings():
    grid = {"training.objective": ["cls", "bce"], "seed": [0, 1]}
    rows = anagrad.sweep(TINY, grid, as_dataframe=False)
    assert [(r["training.objective"], r["seed"]) for r in rows] == [
        ("cls", 0), ("cls", 1), ("bce", 0), ("bce", 1)
    ]
    for row in rows:
        cfg = anagrad.train.load_config(TINY)
        cfg["training"]["objective"], cfg["seed"] = row["training.objective"], row["seed"]
        r = anagrad.train.train(cfg, threads=1)
        assert row["objective"] == r["objective"] and row["steps"] == 4
        assert row["best_step"] == r["best_step"]
        for k in anagrad.train.METRICS:
            assert row[f"best_{k}"] == r["best"][k] and row[f"last_{k}"] == r["last"][k]


def test_sweep_errors_and_options(tmp_path):
    with pytest.raises(InvalidInput, match=r"grid key `training\.bacth_size`"):
        anagrad.sweep(TINY, {"training.bacth_size": [10]})
    with pytest.raises(InvalidInput, match=r"grid key `network` is a table"):
        anagrad.sweep(TINY, {"network": [{}]})
    with pytest.raises(InvalidInput, match=r"grid\['seed'\] must be a list"):
        anagrad.sweep(TINY, {"seed": 1})
    with pytest.raises(InvalidInput, match="errors must be"):
        anagrad.sweep(TINY, {"seed": [1]}, errors="ignore")
    # an invalid combination fails before anything trains, or is recorded
    grid = [{"training.batch_size": 100}, {"training.batch_size": 1000}]
    with pytest.raises(InvalidInput, match=r"training\.batch_size"):
        anagrad.sweep(TINY, grid)
    rows = anagrad.sweep(TINY, grid, errors="record", out=tmp_path, as_dataframe=False)
    assert "error" not in rows[0] and rows[0]["steps"] == 4
    assert rows[0]["out"] == str(tmp_path / "run-000")
    assert (tmp_path / "run-000" / "summary.json").exists()
    assert rows[1]["training.batch_size"] == 1000
    assert rows[1]["error"].startswith("InvalidInput: config key `training.batch_size`")


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_dask_sweep_equals_serial(client):
    pd = pytest.importorskip("pandas")
    grid = {
        "training.objective": ["cls", "bce", "poi_uncert"],
        "seed": [0, 1],
        "network.hidden": [[16], [8, 8]],
    }
    serial = anagrad.sweep(TINY, grid)
    dask = anagrad.sweep(TINY, grid, client=client)
    assert isinstance(dask, pd.DataFrame) and len(dask) == 12
    assert "error" not in dask.columns
    pd.testing.assert_frame_equal(
        serial.drop(columns=list(TIMINGS)), dask.drop(columns=list(TIMINGS)), check_exact=True
    )
    assert dask["last_cls"].notna().all()
