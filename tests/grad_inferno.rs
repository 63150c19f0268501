//! INFERNO's loss on the `inferno_b*` templates: σ_μ = sqrt([I⁻¹]_μμ) with the
//! benchmark's Fisher constraints against an independent numpy computation
//! of the Fisher matrix (`tests/fixtures/inferno/fisher.py` → `fisher.json`),
//! its exact gradient against central finite differences on the histogram
//! inputs, and on the tape through a softmax(logits/τ) histogram.

use anagrad::grad::{Loss, LossKind, Template, YieldFloor};
use anagrad::hf::{ConstraintOverride, ModelOptions, OverrideKind};
use anagrad::infer::teststat::TestStat;
use anagrad::toys::inferno::{Benchmark, Inferno};
use anagrad::toys::ToyModel;
use candle_core::{DType, Device, Tensor, Var};

fn fixture() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/inferno/fisher.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn vec_of(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// The template inputs of benchmark `i` from the fixture's yields, in the
/// order of the toy's analysis inputs.
fn values(fx: &serde_json::Value, toy: &Inferno) -> Vec<f64> {
    let y = &fx["yields"];
    let by_proc = [
        "signal",
        "background",
        "r_up",
        "r_down",
        "lambda_up",
        "lambda_down",
    ];
    let a = toy.analysis(10).unwrap();
    a.inputs
        .iter()
        .flat_map(|(p, _)| vec_of(&y[by_proc[*p]]))
        .collect()
}

fn benchmark(i: usize) -> Inferno {
    Inferno::new(Benchmark::from_index(i).unwrap())
}

fn sigma_loss(toy: &Inferno, floor: YieldFloor) -> Loss {
    Loss::new(
        toy.template(10, floor).unwrap(),
        LossKind::SigmaMu { hyp_mu: 1.0 },
    )
}

#[test]
fn sigma_mu_matches_the_numpy_fisher_matrix() {
    let fx = fixture();
    for i in 0..5 {
        let toy = benchmark(i);
        let v = values(&fx, &toy);
        let want = &fx["benchmarks"][i.to_string()];
        let got = sigma_loss(&toy, YieldFloor::None)
            .evaluate(&v, false)
            .unwrap()
            .value;
        let s = want["sigma_mu"].as_f64().unwrap();
        eprintln!(
            "benchmark {i}: σ_μ {got} vs numpy {s} ({:.1e})",
            (got - s).abs() / s
        );
        assert!(
            (got - s).abs() < 1e-11 * s,
            "benchmark {i}: σ_μ {got} vs numpy {s}"
        );
        // σ_s = 50 σ_μ (s = 50 μ)
        let ss = want["sigma_s"].as_f64().unwrap();
        assert!((50.0 * got - ss).abs() < 1e-9 * ss);
        let gv = Loss::new(
            toy.template(10, YieldFloor::None).unwrap(),
            LossKind::GeneralisedVariance { hyp_mu: 1.0 },
        )
        .evaluate(&v, false)
        .unwrap()
        .value;
        let g = want["generalised_variance"].as_f64().unwrap();
        assert!(
            (gv - g).abs() < 1e-9 * g,
            "benchmark {i}: 1/det I {gv} vs {g}"
        );
    }
    // the benchmarks order as they must: more free nuisances → larger σ_s;
    // constraints (3) shrink it below 2; a free b (4) grows it again
    let s: Vec<f64> = (0..5)
        .map(|i| fx["benchmarks"][i.to_string()]["sigma_s"].as_f64().unwrap())
        .collect();
    assert!(s[0] < s[1] && s[1] < s[2] && s[3] < s[2] && s[4] > s[3]);
}

fn overridden(toy: &Inferno, overrides: Vec<ConstraintOverride>) -> anagrad::Result<Template> {
    toy.analysis(10)?.template_with(
        YieldFloor::None,
        &ModelOptions {
            constraint_overrides: overrides,
            ..ModelOptions::default()
        },
    )
}

fn over(name: &str, constraint: OverrideKind) -> ConstraintOverride {
    ConstraintOverride {
        parameter: name.into(),
        constraint,
    }
}

#[test]
fn without_the_constraint_overrides_it_is_the_plain_workspace() {
    // benchmark 1's analysis with pyhf's unit constraint on α_r is a
    // different (tighter) problem: the override must matter
    let fx = fixture();
    let toy = benchmark(1);
    let v = values(&fx, &toy);
    let sigma = |t: Template| {
        Loss::new(t, LossKind::SigmaMu { hyp_mu: 1.0 })
            .evaluate(&v, false)
            .unwrap()
            .value
    };
    let plain = sigma(overridden(&toy, vec![]).unwrap());
    let free = sigma_loss(&toy, YieldFloor::None)
        .evaluate(&v, false)
        .unwrap()
        .value;
    assert!(plain < free * (1.0 - 1e-3), "{plain} vs {free}");
    // replacing the unit Gaussian by a unit Gaussian changes nothing
    let same =
        sigma(overridden(&toy, vec![over("r", OverrideKind::Normal { sigma: 1.0 })]).unwrap());
    assert!((same - plain).abs() < 1e-14 * plain);
}

#[test]
fn constraint_overrides_are_checked_and_reach_the_fits() {
    let toy = benchmark(4);
    for bad in [
        vec![over("nope", OverrideKind::Free)],
        vec![over("mu", OverrideKind::Free)],
        vec![over("r", OverrideKind::Normal { sigma: 0.0 })],
        vec![over("r", OverrideKind::Normal { sigma: f64::NAN })],
        vec![over("r", OverrideKind::Free), over("r", OverrideKind::Free)],
    ] {
        let e = overridden(&toy, bad.clone()).unwrap_err().to_string();
        assert!(e.contains("constraint override"), "{bad:?}: {e}");
    }
    assert!(overridden(&toy, vec![over("lumi", OverrideKind::Free)]).is_ok());
    // the fit-based losses see the benchmark's constraints too: freeing r and
    // λ can only weaken the expected exclusion (larger expected CLs)
    let v = values(&fixture(), &toy);
    let cls = |t: Template| {
        Loss::new(
            t,
            LossKind::Cls {
                test_mu: 1.0,
                stat: TestStat::Qmu,
            },
        )
        .evaluate(&v, false)
        .unwrap()
        .value
    };
    let plain = cls(overridden(&toy, vec![]).unwrap());
    let bench = cls(toy.template(10, YieldFloor::None).unwrap());
    let free = cls(overridden(
        &toy,
        vec![
            over("r", OverrideKind::Free),
            over("lambda", OverrideKind::Free),
        ],
    )
    .unwrap());
    assert!(plain > 0.0 && plain < 1.0, "{plain}");
    assert!(
        free > bench && bench > plain * (1.0 - 1e-12),
        "{plain} {bench} {free}"
    );
}

#[test]
fn gradient_matches_central_differences() {
    let fx = fixture();
    for i in [1, 2, 3, 4] {
        let toy = benchmark(i);
        let v = values(&fx, &toy);
        let loss = sigma_loss(&toy, YieldFloor::Add(1e-3));
        let g = loss.evaluate(&v, true).unwrap().grad.unwrap();
        assert_eq!(g.len(), v.len());
        let mut worst: f64 = 0.0;
        let scale = g.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        for k in 0..v.len() {
            let h = 1e-4 * v[k].abs().max(1.0);
            let (mut up, mut dn) = (v.clone(), v.clone());
            up[k] += h;
            dn[k] -= h;
            let fd = (loss.evaluate(&up, false).unwrap().value
                - loss.evaluate(&dn, false).unwrap().value)
                / (2.0 * h);
            worst = worst.max((fd - g[k]).abs() / scale);
        }
        eprintln!("benchmark {i}: worst |fd − exact| / max|g| = {worst:.2e}");
        assert!(
            worst < 1e-7,
            "benchmark {i}: worst |fd − exact| / max|g| = {worst:.2e}"
        );
    }
}

/// σ_μ of benchmark `bm` for per-event logits (one (n × 10) tensor per
/// process) through softmax(logits/τ), on the tape.
fn pipeline(toy: &Inferno, logits: &[Tensor], tau: f64, loss: &Loss) -> Tensor {
    let procs = toy.processes();
    let yields: Vec<Tensor> = logits
        .iter()
        .zip(&procs)
        .map(|(z, p)| {
            let n = z.dims()[0] as f64;
            candle_nn::ops::softmax(&z.affine(1.0 / tau, 0.0).unwrap(), candle_core::D::Minus1)
                .unwrap()
                .sum(0)
                .unwrap()
                .affine(p.yield_scale / n, 0.0)
                .unwrap()
        })
        .collect();
    let a = toy.analysis(10).unwrap();
    let inputs: Vec<&Tensor> = a.inputs.iter().map(|(p, _)| &yields[*p]).collect();
    loss.forward(&inputs).unwrap()
}

#[test]
fn gradient_on_the_tape_through_a_softmax_histogram() {
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let toy = benchmark(3);
    let loss = sigma_loss(&toy, YieldFloor::Add(1e-3));
    let mut rng = StdRng::seed_from_u64(5);
    let n = 50;
    let vars: Vec<Var> = toy
        .processes()
        .iter()
        .map(|_| {
            let z: Vec<f64> = (0..n * 10)
                .map(|_| {
                    let x: f64 = StandardNormal.sample(&mut rng);
                    0.3 * x
                })
                .collect();
            Var::from_tensor(&Tensor::from_vec(z, (n, 10), &Device::Cpu).unwrap()).unwrap()
        })
        .collect();
    let tau = 0.1;
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = pipeline(&toy, &ts, tau, &loss);
    assert_eq!(out.dtype(), DType::F64);
    let grads = out.backward().unwrap();
    let eval = |p: usize, k: usize, d: f64| -> f64 {
        let mut ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().copy().unwrap()).collect();
        let mut z = ts[p].flatten_all().unwrap().to_vec1::<f64>().unwrap();
        z[k] += d;
        ts[p] = Tensor::from_vec(z, (n, 10), &Device::Cpu).unwrap();
        pipeline(&toy, &ts, tau, &loss).to_scalar::<f64>().unwrap()
    };
    let mut checked = 0;
    let mut worst: f64 = 0.0;
    for (p, v) in vars.iter().enumerate() {
        let g = grads
            .get(v.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let gmax = g.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        assert!(gmax > 0.0, "process {p}: no gradient");
        for k in (0..n * 10).step_by(37) {
            let h = 1e-5;
            let fd = (eval(p, k, h) - eval(p, k, -h)) / (2.0 * h);
            worst = worst.max((fd - g[k]).abs() / gmax);
            assert!(
                (fd - g[k]).abs() < 1e-6 * gmax,
                "process {p}, logit {k}: fd {fd} vs tape {}",
                g[k]
            );
            checked += 1;
        }
    }
    eprintln!("tape: {checked} logits checked, worst |fd − tape| / max|g| = {worst:.2e}");
    assert!(checked > 60);
}
