"""Errors surface as Python exceptions carrying the library's located message."""

import copy

import numpy as np
import pytest

import anagrad
from anagrad import exceptions
from conftest import REPO, FIXTURES, load


def test_malformed_workspace_is_located():
    spec = load(REPO / "examples" / "workspace.json")
    bad = copy.deepcopy(spec)
    ch = bad["channels"][1]
    for s in ch["samples"]:
        for m in s["modifiers"]:
            if m["type"] == "histosys":
                m["data"]["hi_data"] = m["data"]["hi_data"][:-1]
                break
    with pytest.raises(exceptions.InvalidSpecification) as e:
        anagrad.Workspace(bad)
    msg = str(e.value)
    assert "channels[1].samples[" in msg and "hi_data" in msg, msg
    assert isinstance(e.value, ValueError)


def test_schema_errors():
    spec = load(REPO / "examples" / "workspace.json")
    bad = copy.deepcopy(spec)
    bad["version"] = "2.0.0"
    with pytest.raises(exceptions.InvalidSpecification, match="version"):
        anagrad.Workspace(bad)
    bad = copy.deepcopy(spec)
    bad["observations"][0]["data"][0] = -1
    with pytest.raises(exceptions.InvalidSpecification, match="observations"):
        anagrad.Workspace(bad)


def test_invalid_inputs(example_ws):
    m = example_ws.model()
    with pytest.raises(exceptions.InvalidInput, match="pars has length 3"):
        m.logpdf([1, 2, 3], example_ws.data(m))
    with pytest.raises(exceptions.InvalidInput, match="data has length"):
        m.logpdf(m.config.suggested_init(), [1.0, 2.0])
    with pytest.raises(exceptions.InvalidSpecification, match="no measurement named 'nope'"):
        example_ws.model(measurement_name="nope")
    with pytest.raises(exceptions.InvalidInput, match="interpcode"):
        example_ws.model(modifier_settings={"normsys": {"interpcode": "code9"}})
    with pytest.raises(exceptions.InvalidInput, match="test statistic"):
        anagrad.infer.hypotest(1.0, example_ws.data(m), m, test_stat="bogus")
    with pytest.raises(exceptions.InvalidInput, match="calctype"):
        anagrad.infer.hypotest(1.0, example_ws.data(m), m, calctype="bogus")
    with pytest.raises(ValueError, match="outside of its bounds"):
        init = m.config.suggested_init()
        init[m.config.poi_index] = -3.0
        anagrad.infer.mle.fit(example_ws.data(m), m, init_pars=init)
    with pytest.raises(exceptions.InvalidInput, match="no parameter set"):
        m.config.par_slice("nope")


def test_poi_less_model():
    spec = load(REPO / "examples" / "workspace.json")
    ws = anagrad.Workspace(spec)
    m = ws.model(poi_name="")
    assert m.config.poi_index is None
    with pytest.raises(exceptions.UnspecifiedPOI):
        anagrad.infer.mle.fixed_poi_fit(1.0, ws.data(m), m)
    with pytest.raises(exceptions.InvalidInput, match="parameter of interest"):
        anagrad.infer.hypotest(1.0, ws.data(m), m)
    # the free fit works
    pars = anagrad.infer.mle.fit(ws.data(m), m)
    assert np.all(np.isfinite(pars))


def test_patch_errors():
    d = FIXTURES / "published" / "atlas-susy-2018-06-3l-erjr"
    ps = anagrad.PatchSet(load(d / "patchset.json"))
    with pytest.raises(exceptions.InvalidPatchLookup, match="no patch"):
        ps["nope"]
    bad = {"metadata": {}, "patches": [], "version": "1.0.0"}
    with pytest.raises(exceptions.InvalidPatch):
        anagrad.PatchSet(bad)
    ws = anagrad.Workspace(load(REPO / "examples" / "workspace.json"))
    with pytest.raises(exceptions.InvalidPatch, match="p0"):
        ws.patched([{"op": "remove", "path": "/channels/7"}], label="p0")
