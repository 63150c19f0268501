"""Workspaces, models and patchsets with pyhf's interface.

``Workspace`` is a ``dict`` (the JSON spec) like pyhf's; ``Model`` and its
``config`` expose pyhf's names (``par_order``, ``par_names``,
``suggested_init()``, ``par_slice(name)``, ``logpdf``, ``expected_data``, ...),
backed by the compiled Rust model.
"""

import copy
import hashlib
import json

import numpy as np

from . import _core
from . import exceptions

__all__ = ["Workspace", "Model", "ModelConfig", "PatchSet", "Patch", "digest"]

_INTERP = {
    "normsys": {"code1": "code1", "code4": "code4"},
    "histosys": {"code0": "code0", "code2": "code2", "code4p": "code4p"},
}


def _farr(x):
    return np.ascontiguousarray(x, dtype=np.float64).reshape(-1)


def digest(spec, algorithm="sha256"):
    """pyhf's ``utils.digest``: hex digest of the canonical JSON of ``spec``."""
    stringified = json.dumps(spec, sort_keys=True, ensure_ascii=False).encode("utf8")
    try:
        h = getattr(hashlib, algorithm)
    except AttributeError:
        raise exceptions.InvalidInput(f"{algorithm} is not an algorithm in hashlib")
    return h(stringified).hexdigest()


def _interp_codes(modifier_settings):
    """(normsys, histosys) interpolation code names from pyhf's
    ``modifier_settings={"normsys": {"interpcode": "code4"}, ...}``."""
    ms = modifier_settings or {}
    out = []
    for mod, default in (("normsys", "code4"), ("histosys", "code4p")):
        code = (ms.get(mod) or {}).get("interpcode", default)
        if code not in _INTERP[mod]:
            raise exceptions.InvalidInput(
                f"modifier_settings: {mod} interpcode '{code}' is not supported "
                f"(expected one of {sorted(_INTERP[mod])})"
            )
        out.append(code)
    unknown = set(ms) - {"normsys", "histosys"}
    if unknown:
        raise exceptions.InvalidInput(
            f"modifier_settings: unknown modifier types {sorted(unknown)} (expected normsys, histosys)"
        )
    return tuple(out)


def _modifier_pairs(channels):
    return sorted(
        {(m["name"], m["type"]) for c in channels for s in c["samples"] for m in s["modifiers"]}
    )


class Workspace(dict):
    """A pyhf JSON workspace (a ``dict``), validated on construction.

    ``Workspace(spec)`` takes the parsed JSON (or JSON text); invalid specs
    raise :class:`~anagrad.exceptions.InvalidSpecification` with the location.
    ``strict=True`` turns pyhf's harmless leniencies (accepted with warnings,
    see :attr:`warnings`) into errors.
    """

    def __init__(self, spec, validate=True, strict=False, **config_kwargs):
        if isinstance(spec, (str, bytes)):
            spec = json.loads(spec)
        super().__init__(copy.deepcopy(dict(spec)))
        self._strict = strict
        self._core = _core.Workspace(json.dumps(self), strict)
        self.version = self.get("version")

    @classmethod
    def load(cls, path, **kwargs):
        """Reads a workspace JSON file."""
        with open(path, encoding="utf8") as f:
            return cls(json.load(f), **kwargs)

    # ---- pyhf's read-only views of the spec
    @property
    def measurement_names(self):
        return [m["name"] for m in self.get("measurements", [])]

    @property
    def channels(self):
        return sorted(c["name"] for c in self["channels"])

    @property
    def channel_nbins(self):
        return {
            c["name"]: len(c["samples"][0]["data"]) if c["samples"] else 0
            for c in self["channels"]
        }

    @property
    def samples(self):
        return sorted({s["name"] for c in self["channels"] for s in c["samples"]})

    @property
    def modifiers(self):
        """Sorted ``(name, type)`` pairs, as pyhf lists them."""
        return _modifier_pairs(self["channels"])

    @property
    def parameters(self):
        return sorted(
            {p["name"] for m in self.get("measurements", []) for p in m["config"]["parameters"]}
        )

    @property
    def observations(self):
        return {o["name"]: list(o["data"]) for o in self.get("observations", [])}

    @property
    def warnings(self):
        """Located warnings about inputs accepted as pyhf accepts them."""
        return self._core.warnings()

    def get_measurement(self, measurement_name=None, measurement_index=None, poi_name=None):
        """The measurement dict (first one by default), as pyhf returns it."""
        ms = self.get("measurements", [])
        if not ms:
            raise exceptions.InvalidSpecification("measurements: the workspace has none")
        if measurement_name is not None:
            for m in ms:
                if m["name"] == measurement_name:
                    break
            else:
                raise exceptions.InvalidInput(
                    f"no measurement named '{measurement_name}' (available: {self.measurement_names})"
                )
        elif measurement_index is not None:
            m = ms[measurement_index]
        else:
            m = ms[0]
        m = copy.deepcopy(m)
        if poi_name is not None:
            m["config"]["poi"] = poi_name
        return m

    def model(
        self,
        measurement_name=None,
        modifier_settings=None,
        poi_name=None,
        strict=None,
        patches=None,
        **config_kwargs,
    ):
        """The compiled model of a measurement (pyhf's ``Workspace.model``).

        ``modifier_settings`` as in pyhf (``{"normsys": {"interpcode": "code1"},
        "histosys": {"interpcode": "code0"}}``); ``poi_name`` overrides the
        measurement's POI (``""`` for a model without POI); ``patches``: RFC 6902
        JSON patches (lists of operations) applied first, as pyhf's ``patches=``.
        """
        if patches:
            ws = self
            for k, p in enumerate(patches):
                ws = ws.patched(p, label=f"patches[{k}]")
            return ws.model(measurement_name, modifier_settings, poi_name, strict, **config_kwargs)
        if "validate" in config_kwargs:
            config_kwargs.pop("validate")
        if config_kwargs:
            raise exceptions.InvalidInput(
                f"Workspace.model: unsupported options {sorted(config_kwargs)}"
            )
        normsys, histosys = _interp_codes(modifier_settings)
        core = self._core.model(
            measurement_name,
            poi_name,
            normsys,
            histosys,
            self._strict if strict is None else strict,
        )
        return Model._from_core(core, self, modifier_settings)

    def patched(self, patch, label="patch"):
        """A new workspace with an RFC 6902 JSON patch (a list of operations)
        applied; errors name ``label`` and the failing operation."""
        patch = getattr(patch, "patch", patch)
        core = self._core.patched(json.dumps(list(patch)), label)
        return Workspace(json.loads(core.to_json()), strict=self._strict)

    def data(self, model, include_auxdata=True):
        """Observed main data of ``model``'s channels (in its order) followed by
        its auxiliary data, as a list (pyhf's ``Workspace.data``)."""
        obs = self.observations
        out = []
        for c in model.config.channels:
            if c not in obs:
                raise exceptions.InvalidSpecification(
                    f"observations: no observation for channel '{c}'"
                )
            out.extend(float(x) for x in obs[c])
        if include_auxdata:
            out.extend(model.config.auxdata)
        return out

    def digest(self, algorithm="sha256"):
        return digest(self, algorithm)

    def __repr__(self):
        return f"<anagrad.Workspace with {len(self['channels'])} channels at {hex(id(self))}>"


class _ParamSet:
    """pyhf's ``paramset`` view of one parameter set."""

    def __init__(self, name, modtype, offset, size, is_scalar, init, bounds, fixed):
        self.name = name
        self.modifier_type = modtype
        self.n_parameters = size
        self.is_scalar = is_scalar
        self.suggested_init = init
        self.suggested_bounds = bounds
        self.suggested_fixed = fixed
        self.suggested_fixed_as_bool = all(fixed) if fixed else False
        self._offset = offset

    def __repr__(self):
        return f"<paramset {self.name} ({self.modifier_type}, {self.n_parameters} parameters)>"


class ModelConfig:
    """pyhf's ``_ModelConfig``: parameter layout, suggested values, channels."""

    def __init__(self, core, modifier_settings=None, channels_spec=None):
        self._core = core
        self.par_order = []
        self.par_map = {}
        init = core.init().tolist()
        b = core.bounds().tolist()
        bounds = [[b[2 * i], b[2 * i + 1]] for i in range(len(init))]
        fixed = core.fixed()
        self._init, self._bounds, self._fixed = init, bounds, fixed
        for name, modtype, offset, size, is_scalar in core.par_sets():
            self.par_order.append(name)
            sl = slice(offset, offset + size)
            self.par_map[name] = {
                "slice": sl,
                "paramset": _ParamSet(
                    name, modtype, offset, size, is_scalar, init[sl], bounds[sl], fixed[sl]
                ),
            }
        self._par_names = core.par_names()
        self.npars = len(init)
        self.poi_index = core.poi_index()
        self.poi_name = core.poi_name()
        chans = core.channels()
        self.channels = [c for c, _ in chans]
        self.channel_nbins = {c: n for c, n in chans}
        self.channel_slices = {}
        k = 0
        for c, n in chans:
            self.channel_slices[c] = slice(k, k + n)
            k += n
        self.nmaindata = core.n_main()
        self.nauxdata = core.n_data() - self.nmaindata
        self.auxdata = core.observed_data()[self.nmaindata :].tolist()
        samples = set()
        for _, ss in core.channel_samples():
            samples.update(ss)
        self.samples = sorted(samples)
        if channels_spec is not None:
            self.modifiers = _modifier_pairs(channels_spec)
        else:
            self.modifiers = sorted(
                (n, self.par_map[n]["paramset"].modifier_type) for n in self.par_order
            )
        self.parameters = sorted(self.par_order)
        self.measurement_name = core.measurement_name()
        self.modifier_settings = {
            "normsys": {"interpcode": "code4"},
            "histosys": {"interpcode": "code4p"},
        }
        for k2, v in (modifier_settings or {}).items():
            self.modifier_settings[k2] = dict(v)

    @property
    def par_names(self):
        """Parameter names (``name`` or ``name[i]``), in order."""
        return list(self._par_names)

    def suggested_init(self):
        return list(self._init)

    def suggested_bounds(self):
        return [list(b) for b in self._bounds]

    def suggested_fixed(self):
        return list(self._fixed)

    def par_slice(self, name):
        try:
            return self.par_map[name]["slice"]
        except KeyError:
            raise exceptions.InvalidInput(
                f"no parameter set named '{name}' (available: {self.par_order})"
            ) from None

    def param_set(self, name):
        try:
            return self.par_map[name]["paramset"]
        except KeyError:
            raise exceptions.InvalidInput(
                f"no parameter set named '{name}' (available: {self.par_order})"
            ) from None

    def __repr__(self):
        return f"<anagrad.ModelConfig: {self.npars} parameters, POI {self.poi_name!r}>"


def _model_spec_workspace(spec, poi_name):
    """A workspace around a pyhf model spec (``{"channels", "parameters"}``),
    with placeholder observations, so that ``anagrad.Model(spec)`` works."""
    chans = spec["channels"]
    obs = [
        {"name": c["name"], "data": [0.0] * len(c["samples"][0]["data"])} for c in chans
    ]
    return {
        "channels": copy.deepcopy(chans),
        "observations": obs,
        "measurements": [
            {
                "name": "model",
                "config": {
                    "poi": poi_name if poi_name else "__no_poi__",
                    "parameters": copy.deepcopy(spec.get("parameters", [])),
                },
            }
        ],
        "version": "1.0.0",
    }


class Model:
    """A HistFactory model (pyhf's ``pyhf.Model``).

    Usually obtained from :meth:`Workspace.model`; ``Model(spec, poi_name="mu")``
    builds one from a pyhf model spec (``{"channels": [...], "parameters": [...]}``)
    as ``pyhf.Model`` does.
    """

    def __init__(self, spec, poi_name="mu", modifier_settings=None, validate=True, **config_kwargs):
        ws = Workspace(_model_spec_workspace(spec, poi_name))
        normsys, histosys = _interp_codes(modifier_settings)
        core = ws._core.model(None, poi_name if poi_name else "", normsys, histosys, False)
        self._init_from_core(core, spec["channels"], modifier_settings)
        self.spec = copy.deepcopy(dict(spec))

    @classmethod
    def _from_core(cls, core, workspace=None, modifier_settings=None):
        self = cls.__new__(cls)
        self._init_from_core(
            core, workspace["channels"] if workspace is not None else None, modifier_settings
        )
        if workspace is not None:
            m = workspace.get_measurement(core.measurement_name())
            self.spec = {
                "channels": copy.deepcopy(workspace["channels"]),
                "parameters": m["config"]["parameters"],
            }
        else:
            self.spec = None
        return self

    def _init_from_core(self, core, channels_spec, modifier_settings):
        self._core = core
        self.config = ModelConfig(core, modifier_settings, channels_spec)
        self.version = "1.0.0"
        self.batch_size = None

    @property
    def warnings(self):
        """Located warnings about inputs accepted as pyhf accepts them."""
        return self._core.warnings()

    def _pars(self, pars):
        p = _farr(pars)
        if p.size != self.config.npars:
            raise exceptions.InvalidInput(
                f"pars has length {p.size}, the model has {self.config.npars} parameters"
            )
        return p

    def logpdf(self, pars, data):
        """``log L(pars | data)`` as a shape-(1,) array, like pyhf."""
        return np.array([-0.5 * self._core.twice_nll(self._pars(pars), _farr(data))])

    def twice_nll(self, pars, data):
        """``-2 log L`` as a float."""
        return self._core.twice_nll(self._pars(pars), _farr(data))

    def twice_nll_grad_hess(self, pars, data):
        """``(-2 log L, gradient, Hessian)`` w.r.t. the parameters (exact)."""
        v, g, h = self._core.twice_nll_grad_hess(self._pars(pars), _farr(data))
        n = self.config.npars
        return v, g, h.reshape(n, n)

    def expected_data(self, pars, include_auxdata=True):
        d = self._core.expected_data(self._pars(pars))
        return d if include_auxdata else d[: self.config.nmaindata]

    def expected_actualdata(self, pars):
        return self.expected_data(pars, include_auxdata=False)

    def expected_auxdata(self, pars):
        return self.expected_data(pars)[self.config.nmaindata :]

    def nominal_rates(self):
        """Main-bin expected data at the suggested inits (summed over samples)."""
        return self.expected_actualdata(self.config.suggested_init())

    # ---- templates (for anagrad.grad)
    def inputs(self):
        """The template vector (nominal yields, histosys lo/hi, normsys lo/hi,
        shapesys/staterror uncertainties) as a dict keyed by
        ``(channel, sample, modifier, role)``."""
        vals = self._core.inputs()
        return {
            (c, s, m, r): vals[o : o + n].copy()
            for c, s, m, _, r, o, n in self._core.input_layout()
        }

    def with_inputs(self, values):
        """The same model with some templates replaced: ``values`` maps
        ``(channel, sample, modifier, role)`` keys (see :meth:`inputs`) to arrays."""
        vals = self._core.inputs().copy()
        layout = {(c, s, m, r): (o, n) for c, s, m, _, r, o, n in self._core.input_layout()}
        for key, v in values.items():
            if tuple(key) not in layout:
                raise exceptions.InvalidInput(
                    f"with_inputs: the model has no template {key!r} (see Model.inputs())"
                )
            o, n = layout[tuple(key)]
            v = _farr(v)
            if v.size != n:
                raise exceptions.InvalidInput(
                    f"with_inputs: {key!r} needs {n} values, {v.size} given"
                )
            vals[o : o + n] = v
        m = Model._from_core(self._core.with_inputs(vals), None, self.config.modifier_settings)
        m.config.modifiers = list(self.config.modifiers)
        return m

    def __repr__(self):
        return (
            f"<anagrad.Model: {len(self.config.channels)} channels, {self.config.npars} parameters, "
            f"POI {self.config.poi_name!r}>"
        )


class Patch:
    """One patch of a :class:`PatchSet` (name, label values, RFC 6902 operations)."""

    def __init__(self, patchset, name, values, operations):
        self._ps = patchset
        self.name = name
        self.values = tuple(values)
        self.patch = operations
        self.metadata = {"name": name, "values": list(values)}

    def apply(self, spec):
        """The patched spec (a dict; no digest check)."""
        return json.loads(self._ps._core.apply_json(json.dumps(dict(spec)), self.name))

    def __repr__(self):
        return f"<anagrad.Patch '{self.name}{self.values}'>"


class PatchSet:
    """A pyhf patchset (e.g. a HEPData signal patchset): ``apply(spec, key)``
    returns the patched :class:`Workspace`; ``key`` is a patch name or its
    tuple of label values."""

    def __init__(self, spec, label="patchset", **config_kwargs):
        if isinstance(spec, (str, bytes)):
            spec = json.loads(spec)
        self._spec = spec
        self._core = _core.PatchSet(json.dumps(spec), label)
        name, description, labels, digests, references, version = self._core.metadata()
        self.name = name
        self.description = description
        self.labels = labels
        self.digests = dict(digests)
        self.references = json.loads(references)
        self.version = version
        self.metadata = copy.deepcopy(spec.get("metadata", {}))
        self.patches = [
            Patch(self, n, json.loads(v), json.loads(ops)) for n, v, ops in self._core.patches()
        ]
        self._by_key = {}
        for p in self.patches:
            self._by_key[p.name] = p
            self._by_key[p.values] = p

    @classmethod
    def load(cls, path, **kwargs):
        with open(path, encoding="utf8") as f:
            return cls(json.load(f), label=str(path), **kwargs)

    def __getitem__(self, key):
        k = tuple(key) if isinstance(key, list) else key
        try:
            return self._by_key[k]
        except (KeyError, TypeError):
            raise exceptions.InvalidPatchLookup(
                f"no patch with name or values {key!r} in the patchset "
                f"(names: {[p.name for p in self.patches][:20]})"
            ) from None

    def __iter__(self):
        return iter(self.patches)

    def __len__(self):
        return len(self.patches)

    def verify(self, spec):
        """Checks the patchset's digests against the background-only spec
        (pyhf's ``PatchSet.verify``)."""
        for alg, expected in self.digests.items():
            got = digest(dict(spec), alg)
            if got != expected:
                raise exceptions.PatchSetVerificationError(
                    f"patchset {self.name or ''}: metadata.digests.{alg}: the patchset was made "
                    f"for a background-only workspace with digest {expected}, this one has {got}"
                )

    def apply(self, spec, key, verify=True):
        """The background-only ``spec`` with patch ``key`` applied, as a
        validated :class:`Workspace` (digests checked first, like pyhf)."""
        if verify:
            self.verify(spec)
        patch = self[key]
        strict = getattr(spec, "_strict", False)
        return Workspace(patch.apply(spec), strict=strict)

    def __repr__(self):
        return f"<anagrad.PatchSet with {len(self.patches)} patches>"
