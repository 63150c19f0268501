"""The neos-vs-BCE comparison of papers/neos, trained with relaxed 0.4.0 / JAX.

Same protocol as `anagrad train configs/neos_full.toml --compare`: the blobs
toy (10 000 training and 10 000 test events per process), batches of 2000
events per process (5 steps per epoch), 15 epochs (75 steps), the network
2 -> 1024 -> 1024 -> 1 (relu, sigmoid output, Glorot-normal weights, zero
biases), 4 bins on [0, 1] with learnable inner edges (softmax widths),
bandwidth 0.09, Adam lr 1e-3, f32. Objectives:

* ``cls``: expected CLs at mu = 1 (relaxed.infer.hypotest, test_stat "q",
  background-only Asimov data), through relaxed.hist — the neos loss;
* ``bce``: binary cross-entropy, signal vs nominal background;
* ``bce_aug``: the same with the up and down variations as background too.

After the last step every network is evaluated on the test set with *hard*
histograms at its edges (yields = counts x scale / n x LUMI + 1e-3) and the
expected CLs computed in float64 with pyhf 0.7.6 (numpy backend; relaxed's
own f32 value is stored beside it but is quantised at 2^-23, see test_cls). Random streams are
numpy's/JAX's, so individual seeds differ from anagrad's; the comparison is
between methods, over seeds.

Run (scratch venv outside the repo, as for jax_step.py, plus pyhf==0.7.6):
    /work/venv-neos/bin/python papers/neos/jax_compare.py --out papers/neos/results_jax.json

The step code is jax_step.py's (imported), so both scripts time and train
the same function.
"""

import argparse
import json
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5, 6])
parser.add_argument("--objectives", nargs="+", default=["cls", "bce", "bce_aug"])
parser.add_argument("--epochs", type=int, default=15)
parser.add_argument("--n-train", type=int, default=10000)
parser.add_argument("--n-test", type=int, default=10000)
parser.add_argument("--batch", type=int, default=2000)
parser.add_argument("--out", default=None)
args = parser.parse_args()

# jax_step parses its own flags at import; give it an empty command line
_argv, sys.argv = sys.argv, sys.argv[:1]
import jax_step as js  # noqa: E402

sys.argv = _argv

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pyhf  # noqa: E402
import relaxed  # noqa: E402

pyhf.set_backend("numpy")  # float64
POI, NP = js.POI, js.NP

DT = js.DT


def bce_loss(theta, batch, aug):
    params, _ = theta
    n = batch.shape[1]
    out = js.mlp(params, batch.reshape(-1, 2)).reshape(4, n)
    bkg = out[1:] if aug else out[1:2]
    sig_term = jnp.maximum(jnp.log(out[0]), -100.0).sum()
    bkg_term = jnp.maximum(jnp.log(1.0 - bkg), -100.0).sum()
    return -(sig_term + bkg_term) / (n * (1 + bkg.shape[0]))


LOSSES = {
    "cls": js.loss_fn,
    "bce": lambda th, b: bce_loss(th, b, False),
    "bce_aug": lambda th, b: bce_loss(th, b, True),
}


def make_step(loss):
    @jax.jit
    def step(theta, m, v, t, batch):
        value, g = jax.value_and_grad(loss)(theta, batch)
        b1, b2, eps, lr = 0.9, 0.999, 1e-8, 1e-3
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        mh = jax.tree_util.tree_map(lambda m: m / (1 - b1**t), m)
        vh = jax.tree_util.tree_map(lambda v: v / (1 - b2**t), v)
        theta = jax.tree_util.tree_map(lambda p, a, b: p - lr * a / (jnp.sqrt(b) + eps), theta, mh, vh)
        return theta, m, v, value

    return step


def sample(rng, n):
    return np.stack([rng.normal(size=(n, 2)) + np.asarray(mu) for mu in js.MEANS])


def pyhf_cls(yields):
    """Expected CLs at mu = 1 in float64 with pyhf (numpy backend): the neos
    model on the hard-histogram yields, background-only Asimov data, test
    statistic q — what anagrad reports as test CLs."""
    sig, nom, up, down = (list(map(float, y)) for y in yields)
    spec = {
        "channels": [
            {
                "name": "neos",
                "samples": [
                    {"name": "signal", "data": sig, "modifiers": [{"name": POI, "type": "normfactor", "data": None}]},
                    {
                        "name": "background",
                        "data": nom,
                        "modifiers": [{"name": NP, "type": "histosys", "data": {"hi_data": up, "lo_data": down}}],
                    },
                ],
            }
        ]
    }
    model = pyhf.Model(spec, poi_name=POI)
    pars = model.config.suggested_init()
    pars[model.config.poi_index] = 0.0
    data = model.expected_data(pars)
    return float(pyhf.infer.hypotest(1.0, data, model, test_stat="q"))


def test_cls(theta, test):
    params, logits = theta
    n = test.shape[1]
    out = np.asarray(js.mlp(params, jnp.asarray(test.reshape(-1, 2), DT))).reshape(4, n)
    edges = np.asarray(js.edges_of(logits), dtype=np.float64)
    yields = []
    for i in range(4):
        c, _ = np.histogram(out[i], bins=edges)
        yields.append(c * js.SCALES[i] / n * js.LUMI + js.FLOOR)
    # relaxed's own CLs in the training precision, for reference only: in f32
    # its p-values lose everything below ~6e-8 absolute (1 - Phi cancellation),
    # so CLs near 1e-6 come out as multiples of 2^-23
    model = js.NeosModel(*(jnp.asarray(y, DT) for y in yields))
    bonly = js.pars_of(0.0, 0.0)
    cls_f32 = relaxed.infer.hypotest(
        1.0, model.expected_data(bonly), model, init_pars=js.pars_of(1.0, 0.0), test_stat="q", expected_pars=bonly
    )
    return pyhf_cls(yields), float(cls_f32), edges.tolist(), [y.tolist() for y in yields]


def train(objective, seed, step):
    rng = np.random.default_rng(seed)
    train_x = sample(rng, args.n_train)
    test_x = sample(rng, args.n_test)
    theta = (js.init_mlp(jax.random.PRNGKey(seed), [2, 1024, 1024, 1]), jnp.zeros(4, DT))
    m = jax.tree_util.tree_map(jnp.zeros_like, theta)
    v = jax.tree_util.tree_map(jnp.zeros_like, theta)
    spe = args.n_train // args.batch
    t, losses, times = 0, [], []
    for _ in range(args.epochs):
        perm = [rng.permutation(args.n_train) for _ in range(4)]
        for k in range(spe):
            batch = np.stack([train_x[p][perm[p][k * args.batch : (k + 1) * args.batch]] for p in range(4)])
            t += 1
            t0 = time.perf_counter()
            theta, m, v, value = step(theta, m, v, jnp.asarray(t, DT), jnp.asarray(batch, DT))
            value = float(jax.block_until_ready(value))
            times.append(time.perf_counter() - t0)
            losses.append(value)
    cls, cls_f32, edges, yields = test_cls(theta, test_x)
    return {
        "test_cls": cls,
        "test_cls_relaxed_f32": cls_f32,
        "edges": edges,
        "yields": yields,
        "loss": losses,
        "step_seconds": times,
    }


def main():
    results = {}
    for obj in args.objectives:
        step = make_step(LOSSES[obj])
        runs = {}
        for seed in args.seeds:
            r = train(obj, seed, step)
            runs[seed] = r
            print(f"{obj} seed {seed}: test CLs {r['test_cls']:.3e}", file=sys.stderr, flush=True)
        cls = np.array([r["test_cls"] for r in runs.values()])
        results[obj] = {
            "seeds": args.seeds,
            "test_cls": cls.tolist(),
            "cls_mean": float(cls.mean()),
            "cls_std": float(cls.std(ddof=1)) if len(cls) > 1 else 0.0,
            # the first step of each seed compiles; leave those out
            "median_step_seconds": float(np.median([s for r in runs.values() for s in r["step_seconds"][1:]])),
            "runs": runs,
        }
    summary = {
        "versions": {"jax": jax.__version__, "relaxed": relaxed.__version__, "pyhf": pyhf.__version__},
        "protocol": vars(args),
        "objectives": results,
    }
    print("| objective | test CLs (mean ± std) | median step |")
    print("|---|---|---|")
    for obj, r in results.items():
        print(f"| {obj} | {r['cls_mean']:.3e} ± {r['cls_std']:.1e} | {r['median_step_seconds'] * 1e3:.0f} ms |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
