"""Step time of the neos training step in relaxed 0.4.0 / JAX (jit, CPU).

The step anagrad's `anagrad train` default takes: the blobs toy, batch 2000
events per sample x 4 samples, network 2 -> 1024 -> 1024 -> 1 (relu, sigmoid
output), relaxed.hist (4 bins on [0, 1], bandwidth 0.09) with learnable
inner edges (softmax of logits, cumulative sum), neos's yield scaling
(signal x 2, backgrounds x 10, LUMI 10, per-batch / N), the neos model
(normfactor + histosys, pyhf's code 4p), expected CLs at mu = 1 with
relaxed.infer.hypotest(test_stat="q"), value_and_grad w.r.t. the weights
and the edge logits, and an Adam update (lr 1e-3). Everything under one
jax.jit; the first (compiling) call is excluded from the timing.

Run (scratch venv outside the repo, e.g. the one of papers/bandwidth):
    python3 -m venv /work/venv-neos
    /work/venv-neos/bin/pip install relaxed==0.4.0 'jax[cpu]' pyhf==0.7.6
    /work/venv-neos/bin/python papers/neos/jax_step.py [--f64] [--steps 10]

Prints one JSON line: precision, median and all step times (seconds), the
loss after each step.
"""

import argparse
import json
import time

parser = argparse.ArgumentParser()
parser.add_argument("--f64", action="store_true")
parser.add_argument("--steps", type=int, default=10)
parser.add_argument("--batch", type=int, default=2000)
args = parser.parse_args()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", args.f64)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jax.scipy as jsp  # noqa: E402
import numpy as np  # noqa: E402
import relaxed  # noqa: E402

DT = jnp.float64 if args.f64 else jnp.float32
POI, NP = "mu", "correlated_bkg_uncertainty"
MEANS = [(-1.0, 1.0), (1.0, -1.0), (2.5, 2.0), (-2.5, -1.5)]
SCALES = [2.0, 10.0, 10.0, 10.0]
LUMI = 10.0
FLOOR = 1e-3


class NeosModel(eqx.Module):
    """pyhf's likelihood of the neos model (same as tests/fixtures/neos/generate.py)."""

    sig: jax.Array
    nom: jax.Array
    up: jax.Array
    down: jax.Array

    def expected_data(self, pars):
        mu, alpha = pars[POI], pars[NP]
        d_up = self.up - self.nom
        d_dn = self.nom - self.down
        s = 0.5 * (d_up + d_dn)
        a = 0.0625 * (d_up - d_dn)
        inner = alpha * (s + alpha * a * (15.0 + alpha * alpha * (-10.0 + alpha * alpha * 3.0)))
        delta = jnp.where(alpha > 1.0, d_up * alpha, jnp.where(alpha < -1.0, d_dn * alpha, inner))
        return jnp.concatenate([mu * self.sig + self.nom + delta, jnp.atleast_1d(alpha)])

    def logpdf(self, pars, data):
        lam = self.expected_data(pars)[:-1]
        n = data[:-1]
        pois = jnp.sum(n * jnp.log(lam) - lam - jsp.special.gammaln(n + 1.0))
        return pois - 0.5 * (data[-1] - pars[NP]) ** 2 - 0.5 * jnp.log(2.0 * jnp.pi)


def _fixed_poi_fit(data, model, poi_value, poi_name, init_pars, bounds=None, **kw):
    # relaxed 0.4.0 mutates the pars dict inside the objective, which current
    # jaxopt rejects; same fix as tests/fixtures/neos/generate.py.
    def obj(pars, model, data):
        return -model.logpdf(data=data, pars={**pars, poi_name: poi_value})

    res = relaxed.mle._minimize(fit_objective=obj, model=model, data=data, init_pars=init_pars, bounds=bounds, **kw)
    return {**res, poi_name: poi_value}


relaxed.infer.fixed_poi_fit = _fixed_poi_fit


def pars_of(mu, alpha):
    return {POI: jnp.asarray(mu, dtype=DT), NP: jnp.asarray(alpha, dtype=DT)}


def init_mlp(key, sizes):
    params = []
    for fi, fo in zip(sizes[:-1], sizes[1:]):
        key, k = jax.random.split(key)
        std = np.sqrt(2.0 / (fi + fo))
        params.append((jax.random.normal(k, (fi, fo), DT) * std, jnp.zeros(fo, DT)))
    return params


def mlp(params, x):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return jax.nn.sigmoid(x @ w + b)[:, 0]


def edges_of(logits):
    p = 1e-4 / 4 + (1.0 - 1e-4) * jax.nn.softmax(logits)
    return jnp.concatenate([jnp.zeros(1, DT), jnp.cumsum(p)[:-1], jnp.ones(1, DT)])


def loss_fn(theta, batch):
    params, logits = theta
    n = batch.shape[1]
    out = mlp(params, batch.reshape(-1, 2)).reshape(4, n)
    edges = edges_of(logits)
    h = [relaxed.hist(out[i], edges, 0.09) * SCALES[i] / n * LUMI + FLOOR for i in range(4)]
    model = NeosModel(*h)
    bonly = pars_of(0.0, 0.0)
    data = model.expected_data(bonly)
    return relaxed.infer.hypotest(1.0, data, model, init_pars=pars_of(1.0, 0.0), test_stat="q", expected_pars=bonly)


@jax.jit
def step(theta, m, v, t, batch):
    loss, g = jax.value_and_grad(loss_fn)(theta, batch)
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 1e-3
    m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
    v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
    mh = jax.tree_util.tree_map(lambda m: m / (1 - b1**t), m)
    vh = jax.tree_util.tree_map(lambda v: v / (1 - b2**t), v)
    theta = jax.tree_util.tree_map(lambda p, a, b: p - lr * a / (jnp.sqrt(b) + eps), theta, mh, vh)
    return theta, m, v, loss


def main():
    rng = np.random.default_rng(0)
    key = jax.random.PRNGKey(0)
    theta = (init_mlp(key, [2, 1024, 1024, 1]), jnp.zeros(4, DT))
    m = jax.tree_util.tree_map(jnp.zeros_like, theta)
    v = jax.tree_util.tree_map(jnp.zeros_like, theta)
    times, losses = [], []
    for t in range(args.steps + 1):
        batch = jnp.asarray(
            np.stack([rng.normal(size=(args.batch, 2)) + np.asarray(mu) for mu in MEANS]), dtype=DT
        )
        t0 = time.perf_counter()
        theta, m, v, loss = step(theta, m, v, jnp.asarray(t + 1, DT), batch)
        loss = float(jax.block_until_ready(loss))
        dt = time.perf_counter() - t0
        if t > 0:  # the first call compiles
            times.append(dt)
            losses.append(loss)
    print(
        json.dumps(
            {
                "precision": "f64" if args.f64 else "f32",
                "batch_per_sample": args.batch,
                "median_step_seconds": float(np.median(times)),
                "step_seconds": times,
                "loss": losses,
                "versions": {"jax": jax.__version__, "relaxed": relaxed.__version__},
            }
        )
    )


if __name__ == "__main__":
    main()
