"""anagrad.scan: a Dask LocalCluster (2 worker processes) gives the same
table as the serial loop, on a 24-patch signal grid and on a published
patchset (whose CLs are checked against pyhf's); toy ensembles sharded over
the workers equal the serial unsharded toys bit for bit."""

import copy

import numpy as np
import pytest

import anagrad
from conftest import FIXTURES, REPO, load

ERJR = FIXTURES / "published" / "atlas-susy-2018-06-3l-erjr"


def signal_grid(n=24):
    """A patchset over examples/workspace.json: the SR signal scaled and reshaped."""
    bkg = load(REPO / "examples" / "workspace.json")
    ci = [c["name"] for c in bkg["channels"]].index("SR")
    si = [s["name"] for s in bkg["channels"][ci]["samples"]].index("signal")
    nominal = np.asarray(bkg["channels"][ci]["samples"][si]["data"], dtype=float)
    patches = []
    for k in range(n):
        scale = 0.25 + 0.15 * (k % 8)
        tilt = np.linspace(1.0 - 0.1 * (k // 8), 1.0 + 0.1 * (k // 8), nominal.size)
        patches.append({
            "metadata": {"name": f"sig_{k:02d}", "values": [round(scale, 3), k // 8]},
            "patch": [{"op": "replace",
                       "path": f"/channels/{ci}/samples/{si}/data",
                       "value": (nominal * scale * tilt).tolist()}],
        })
    ps = {
        "metadata": {"name": "grid", "description": "signal grid for the scan test",
                     "digests": {"sha256": anagrad.digest(bkg)}, "labels": ["scale", "tilt"],
                     "references": {}},
        "patches": patches,
        "version": "1.0.0",
    }
    return bkg, ps


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_serial_table_matches_direct_calls():
    bkg, ps = signal_grid(4)
    rows = anagrad.scan(bkg, ps, as_dataframe=False)
    pset = anagrad.PatchSet(ps)
    for row in rows:
        ws = pset.apply(bkg, row["patch"])
        m = ws.model()
        obs, band = anagrad.infer.hypotest(1.0, ws.data(m), m, return_expected_set=True)
        assert row["CLs_obs"] == float(obs)
        assert [row[c] for c in ("CLs_exp_m2", "CLs_exp_m1", "CLs_exp", "CLs_exp_p1", "CLs_exp_p2")] \
            == [float(b) for b in band]
        assert row["scale"] == pset[row["patch"]].values[0]


def test_dask_scan_equals_serial(client):
    pd = pytest.importorskip("pandas")
    bkg, ps = signal_grid(24)
    serial = anagrad.scan(bkg, ps)
    dist = anagrad.scan(bkg, ps, client=client)
    assert len(serial) == 24 and list(serial["patch"]) == [f"sig_{k:02d}" for k in range(24)]
    pd.testing.assert_frame_equal(serial, dist, check_exact=True)
    # the work was spread over both workers
    assert len(client.scheduler_info()["workers"]) >= 2
    sub = ["sig_00", "sig_05", "sig_17"]
    lim_s = anagrad.scan(bkg, ps, sub, what="upper_limit")
    lim_d = anagrad.scan(bkg, ps, sub, what="upper_limit", client=client)
    pd.testing.assert_frame_equal(lim_s, lim_d, check_exact=True)
    assert (lim_s["exp_limit_m2"] < lim_s["exp_limit"]).all()


def test_dask_scan_published_patchset(client):
    bkg, ps = load(ERJR / "BkgOnly.json"), load(ERJR / "patchset.json")
    refs = {p["name"]: p for p in load(ERJR / "refs.json")["points"]}
    dist = anagrad.scan(bkg, ps, client=client, as_dataframe=False)
    serial = anagrad.scan(bkg, ps, as_dataframe=False)
    assert dist == serial
    for row in dist:
        ref = refs[row["patch"]]
        h = ref["hypotest"]
        # as tests/published.rs: pyhf's own -2 log L is only defined to `twice_nll_noise`
        # here (a shapesys tau of 1.9e11: its Poisson terms cancel to ~1e-3), so the
        # tolerance is max(1e-6, 10 * noise)
        tol = max(1e-6, 10 * ref["global_check"]["twice_nll_noise"])
        assert row["CLs_obs"] == pytest.approx(h["CLs_obs"], rel=tol)
        band = [row[c] for c in ("CLs_exp_m2", "CLs_exp_m1", "CLs_exp", "CLs_exp_p1", "CLs_exp_p2")]
        assert band == pytest.approx(h["CLs_exp"], rel=tol)


def test_scan_errors_and_threads():
    bkg, ps = signal_grid(3)
    bad = copy.deepcopy(ps)
    bad["patches"][1]["patch"][0]["path"] = "/channels/9/samples/0/data"
    rows = anagrad.scan(bkg, bad, errors="record", as_dataframe=False)
    assert "error" in rows[1] and "InvalidPatch" in rows[1]["error"]
    with pytest.raises(anagrad.exceptions.InvalidPatch):
        anagrad.scan(bkg, bad)
    other = copy.deepcopy(bkg)
    other["observations"][0]["data"][0] += 1
    with pytest.raises(anagrad.exceptions.PatchSetVerificationError):
        anagrad.scan(other, ps)
    a = anagrad.scan(bkg, ps, threads=1, as_dataframe=False)
    b = anagrad.scan(bkg, ps, threads=2, as_dataframe=False)
    assert a == b
    assert anagrad.get_num_threads() == 0
    anagrad.set_num_threads(1)
    try:
        assert anagrad.get_num_threads() == 1
    finally:
        anagrad.set_num_threads(0)


def test_dask_toy_scan_equals_serial(client):
    """Toy ensembles on Dask: every patch's ensemble split into 3 shard tasks
    and merged on a worker gives, bit for bit, the serial loop of unsharded
    ``hypotest(calctype="toybased")`` calls with the same seed."""
    pd = pytest.importorskip("pandas")
    bkg, ps = signal_grid(4)
    kw = dict(calctype="toybased", ntoys=120, seed=5)
    # mu = 3: the data fluctuate up (mu_hat = 5.1 for sig_00), so at mu = 1 CLs is 1
    dist = anagrad.scan(bkg, ps, poi_test=3.0, shards_per_point=3, client=client, **kw)
    pset = anagrad.PatchSet(ps)
    rows = []
    for name in dist["patch"]:
        ws = pset.apply(bkg, name)
        m = ws.model()
        obs, (clsb, clb), band = anagrad.infer.hypotest(
            3.0, ws.data(m), m, return_tail_probs=True, return_expected_set=True, **kw
        )
        row = {"patch": name, "scale": pset[name].values[0], "tilt": pset[name].values[1],
               "CLs_obs": float(obs)}
        row.update(zip(("CLs_exp_m2", "CLs_exp_m1", "CLs_exp", "CLs_exp_p1", "CLs_exp_p2"),
                       (float(b) for b in band)))
        row.update(CLsb_obs=float(clsb), CLb_obs=float(clb))
        rows.append(row)
    serial = pd.DataFrame(rows)
    pd.testing.assert_frame_equal(dist[serial.columns], serial, check_exact=True)
    assert (dist["ntoys"] == 120).all() and (dist["failed_sb"] + dist["failed_b"] == 0).all()
    assert (dist["CLs_exp_m2"] <= dist["CLs_exp"]).all() and dist["CLs_obs"].nunique() > 1
    # the same table serially, for any number of shards
    pd.testing.assert_frame_equal(
        anagrad.scan(bkg, ps, poi_test=3.0, shards_per_point=2, **kw), dist, check_exact=True
    )
    # bad input; errors recorded per patch
    with pytest.raises(anagrad.exceptions.InvalidInput, match="ntoys must be at least 1"):
        anagrad.scan(bkg, ps, calctype="toybased", ntoys=0)
    with pytest.raises(anagrad.exceptions.InvalidInput, match="shards_per_point"):
        anagrad.scan(bkg, ps, shards_per_point=0, **kw)
    with pytest.raises(anagrad.exceptions.InvalidInput, match="toybased"):
        anagrad.scan(bkg, ps, what="upper_limit", **kw)
    bad = copy.deepcopy(ps)
    bad["patches"][1]["patch"][0]["path"] = "/channels/9/samples/0/data"
    rows = anagrad.scan(bkg, bad, ["sig_00", "sig_01"], errors="record", shards_per_point=2,
                        client=client, as_dataframe=False, **dict(kw, ntoys=20))
    assert "error" not in rows[0] and "InvalidPatch" in rows[1]["error"]
