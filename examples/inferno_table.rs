//! The INFERNO table (issue 14): networks trained with the INFERNO objective
//! on each benchmark and a cross-entropy classifier, over many seeds, each
//! evaluated on all five benchmarks (the layout of the paper's table 2).
//!
//! ```sh
//! # train (resumable: a job whose result file exists is skipped); run two
//! # processes with disjoint seeds and RAYON_NUM_THREADS=1 on a 2-core machine
//! RAYON_NUM_THREADS=1 cargo run --release --example inferno_table -- run --seeds 0-19 --steps 1000
//! # the exact-gradient variant: σ_μ loss through a bKDE with learned edges
//! RAYON_NUM_THREADS=1 cargo run --release --example inferno_table -- run --seeds 0-9 --only bkde_b2,bkde_b4
//! # aggregate the result files into table.md / table.json
//! cargo run --release --example inferno_table -- table
//! ```
//!
//! A job trains one network (`configs/inferno_b<k>.toml` or
//! `configs/inferno_bce.toml`, the seed and `--steps` overriding the config)
//! and evaluates its **last-step** weights on benchmarks 0–4: a trainer of
//! that benchmark's configuration (same seed, so the same held-out events)
//! gets the weights and reports σ_s = 50 σ_μ from the Fisher information of
//! the argmax (INFERNO) or 10-bin (classifier) histograms, and from the
//! profile-likelihood interval with code-2 interpolation. The classifier's
//! training does not depend on the benchmark; it is trained on benchmark 0's
//! processes (signal and nominal background only). Jobs `bkde_b<k>` train
//! `configs/inferno_bkde.toml` on benchmark k.

use anagrad::grad::{Loss, LossKind, YieldFloor};
use anagrad::toys::inferno::{Benchmark, Inferno};
use anagrad::toys::ToyModel;
use anagrad::train::{profile_sigma_mu, run::run, RunOptions, TrainConfig, Trainer};
use anagrad::{Error, Result};
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Eval {
    benchmark: usize,
    sigma_s_fisher: Option<f64>,
    sigma_s_profile: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobResult {
    /// `inferno_b<k>` or `bce`.
    trained: String,
    seed: u64,
    steps: usize,
    median_step_seconds: f64,
    wall_seconds: f64,
    evals: Vec<Eval>,
}

fn err(msg: String) -> Error {
    Error::InvalidInput(msg)
}

fn config(trained: &str, eval_benchmark: usize, seed: u64, steps: usize) -> Result<TrainConfig> {
    let file = if trained == "bce" {
        "inferno_bce.toml".to_string()
    } else if trained.starts_with("bkde_b") {
        "inferno_bkde.toml".to_string()
    } else {
        format!("{trained}.toml")
    };
    let mut cfg = TrainConfig::from_path(&Path::new(ROOT).join("configs").join(file))?;
    cfg.toy.name = format!("inferno_b{eval_benchmark}");
    cfg.seed = seed;
    cfg.training.max_steps = Some(steps);
    cfg.training.eval_every = steps;
    cfg.validate()?;
    Ok(cfg)
}

fn job(trained: &str, seed: u64, steps: usize, runs: &Path) -> Result<JobResult> {
    let t0 = Instant::now();
    let home = if trained == "bce" {
        0
    } else {
        trained
            .strip_prefix("inferno_b")
            .or_else(|| trained.strip_prefix("bkde_b"))
            .and_then(|s| s.parse().ok())
            .filter(|&b: &usize| b < 5)
            .ok_or_else(|| err(format!("unknown job '{trained}'")))?
    };
    let cfg = config(trained, home, seed, steps)?;
    let opts = RunOptions {
        out: runs.join(format!("seed{seed}")).join(trained),
        device: Device::Cpu,
        progress: false,
        figures: false,
    };
    let mut t = Trainer::new(&cfg, &Device::Cpu)?;
    let report = run(&mut t, &opts)?;
    let weights: Vec<Tensor> = t
        .network()
        .vars()
        .iter()
        .map(|v| v.as_tensor().copy())
        .collect::<candle_core::Result<_>>()?;
    let mut evals = Vec::new();
    for b in 0..5 {
        let m = if b == home {
            report
                .last
                .clone()
                .ok_or_else(|| err(format!("{trained} seed {seed}: no last evaluation")))?
        } else {
            let e = Trainer::new(&config(trained, b, seed, steps)?, &Device::Cpu)?;
            e.network().set_values(&weights)?;
            e.evaluate()?
        };
        evals.push(Eval {
            benchmark: b,
            sigma_s_fisher: m.sigma_mu.map(|v| 50.0 * v),
            sigma_s_profile: m.sigma_mu_profile.map(|v| 50.0 * v),
        });
    }
    Ok(JobResult {
        trained: trained.to_string(),
        seed,
        steps,
        median_step_seconds: report.median_step_seconds,
        wall_seconds: t0.elapsed().as_secs_f64(),
        evals,
    })
}

/// The paper's "optimal classifier": 10 equal bins on [0, 1] of the
/// Bayes-optimal balanced classifier f_s / (f_s + f_b) at the nominal point
/// (the function a cross-entropy classifier on equal-sized samples
/// approximates), on `n` events per process: (Fisher σ_s, profile σ_s).
fn optimal_classifier(benchmark: usize, n: usize) -> Result<(f64, f64)> {
    let toy = Inferno::new(Benchmark::from_index(benchmark)?);
    let mut rng = StdRng::seed_from_u64(20261206);
    let sig = toy.sample(0, n, &mut rng)?;
    let bkg = toy.sample(1, n, &mut rng)?;
    let procs = toy.processes();
    let mut events = vec![sig, bkg.clone()];
    for p in 2..procs.len() {
        events.push(toy.derive(p, &bkg)?);
    }
    let yields: Vec<Vec<f64>> = events
        .iter()
        .zip(&procs)
        .map(|(ev, p)| {
            let mut h = vec![0.0; 10];
            for x in ev.features.chunks_exact(3) {
                let x = [x[0], x[1], x[2]];
                let fs = Inferno::signal_density(&x);
                let fb = Inferno::background_density(&x, 0.0, 3.0);
                let c = if fs + fb > 0.0 { fs / (fs + fb) } else { 0.0 };
                h[((c * 10.0) as usize).min(9)] += p.yield_scale / n as f64;
            }
            h
        })
        .collect();
    let values: Vec<f64> = toy
        .analysis(10)?
        .inputs
        .iter()
        .flat_map(|(p, _)| yields[*p].iter().copied())
        .collect();
    let tpl = toy.template(10, YieldFloor::Add(1e-3))?;
    let fisher = Loss::new(tpl.clone(), LossKind::SigmaMu { hyp_mu: 1.0 })
        .evaluate(&values, false)?
        .value;
    Ok((50.0 * fisher, 50.0 * profile_sigma_mu(&tpl, &values)?))
}

fn parse_seeds(s: &str) -> Result<Vec<u64>> {
    let bad = |e: std::num::ParseIntError| err(format!("--seeds '{s}': {e}"));
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<u64>().map_err(bad)?..=b.parse().map_err(bad)?),
            None => out.push(part.parse().map_err(bad)?),
        }
    }
    Ok(out)
}

/// numpy's default (linear) quantile of sorted data.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The paper's table 2 (`paper/table.tex` of pablodecm/paper-inferno):
/// median, +, − per benchmark; rows NN classifier, INFERNO 0–4.
type PaperRow = (&'static str, [(f64, f64, f64); 5]);

const PAPER: [PaperRow; 6] = [
    (
        "bce",
        [
            (14.99, 0.02, 0.00),
            (18.94, 0.11, 0.05),
            (23.94, 0.52, 0.17),
            (21.54, 0.27, 0.05),
            (26.71, 0.56, 0.11),
        ],
    ),
    (
        "inferno_b0",
        [
            (15.51, 0.09, 0.02),
            (18.34, 5.17, 0.51),
            (23.24, 6.54, 1.22),
            (21.38, 3.15, 0.69),
            (26.38, 7.63, 1.36),
        ],
    ),
    (
        "inferno_b1",
        [
            (15.80, 0.14, 0.04),
            (16.79, 0.17, 0.05),
            (21.41, 2.00, 0.53),
            (20.29, 1.20, 0.39),
            (24.26, 2.35, 0.71),
        ],
    ),
    (
        "inferno_b2",
        [
            (15.71, 0.15, 0.04),
            (16.87, 0.19, 0.06),
            (16.95, 0.18, 0.04),
            (16.88, 0.17, 0.03),
            (18.67, 0.25, 0.05),
        ],
    ),
    (
        "inferno_b3",
        [
            (15.70, 0.21, 0.04),
            (16.91, 0.20, 0.05),
            (16.97, 0.21, 0.04),
            (16.89, 0.18, 0.03),
            (18.69, 0.27, 0.04),
        ],
    ),
    (
        "inferno_b4",
        [
            (15.71, 0.32, 0.06),
            (16.89, 0.30, 0.07),
            (16.95, 0.38, 0.05),
            (16.88, 0.40, 0.05),
            (18.68, 0.58, 0.07),
        ],
    ),
];

fn label(trained: &str) -> String {
    match trained {
        "bce" => "NN classifier (cross-entropy)".into(),
        t if t.starts_with("bkde_b") => format!(
            "σ_μ loss, bKDE + learned edges, trained on b{}",
            t.trim_start_matches("bkde_b")
        ),
        t => format!("INFERNO {}", t.trim_start_matches("inferno_b")),
    }
}

/// Table rows: the paper's, then the bKDE variants present in `results`.
fn row_names(results: &[JobResult]) -> Vec<String> {
    let mut names: Vec<String> = PAPER.iter().map(|(t, _)| t.to_string()).collect();
    let mut extra: Vec<String> = results
        .iter()
        .map(|r| r.trained.clone())
        .filter(|t| !names.contains(t))
        .collect();
    extra.sort();
    extra.dedup();
    names.extend(extra);
    names
}

fn table(dir: &Path) -> Result<()> {
    let mut results: Vec<JobResult> = Vec::new();
    let rdir = dir.join("results");
    let entries = std::fs::read_dir(&rdir).map_err(|source| Error::Io {
        path: rdir.display().to_string(),
        source,
    })?;
    for e in entries {
        let p = e
            .map_err(|source| Error::Io {
                path: rdir.display().to_string(),
                source,
            })?
            .path();
        if p.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&p).map_err(|source| Error::Io {
                path: p.display().to_string(),
                source,
            })?;
            results.push(serde_json::from_str(&text).map_err(|source| Error::Json {
                context: p.display().to_string(),
                source,
            })?);
        }
    }
    let (mut bound, mut optimal) = (Vec::new(), Vec::new());
    for b in 0..5 {
        bound.push(Inferno::new(Benchmark::from_index(b)?).analytic_sigma_s()?);
        optimal.push(optimal_classifier(b, 1_000_000)?);
    }
    let mut md = String::new();
    let mut json = Vec::new();
    for (metric, title) in [
        (
            "fisher",
            "σ_s from the Fisher information (Asimov Hessian) of the hard histograms",
        ),
        (
            "profile",
            "σ_s from the profile-likelihood interval (−2 ln λ ≤ 1, code-4p interpolation; the paper's rows are its Fisher σ_s, it reports no profile widths)",
        ),
    ] {
        md += &format!(
            "### {title}\n\nmedian [16 %, 84 %] over initialisations (n = number of seeds); \
             paper: median (+, −)\n\n| trained | n | steps | b0 | b1 | b2 | b3 | b4 |\n|---|---|---|---|---|---|---|---|\n"
        );
        for trained in row_names(&results) {
            let trained = trained.as_str();
            let paper = PAPER.iter().find(|(t, _)| *t == trained).map(|p| p.1);
            let rs: Vec<&JobResult> = results.iter().filter(|r| r.trained == trained).collect();
            if rs.is_empty() {
                continue;
            }
            let mut steps: Vec<usize> = rs.iter().map(|r| r.steps).collect();
            steps.dedup();
            let mut cells = Vec::new();
            for b in 0..5 {
                let mut v: Vec<f64> = rs
                    .iter()
                    .filter_map(|r| {
                        let e = r.evals.iter().find(|e| e.benchmark == b)?;
                        if metric == "fisher" {
                            e.sigma_s_fisher
                        } else {
                            e.sigma_s_profile
                        }
                    })
                    .collect();
                v.sort_by(f64::total_cmp);
                if v.is_empty() {
                    cells.push("—".to_string());
                    continue;
                }
                let (q16, q50, q84) = (quantile(&v, 0.16), quantile(&v, 0.5), quantile(&v, 0.84));
                json.push(serde_json::json!({
                    "metric": metric, "trained": trained, "benchmark": b, "n": v.len(),
                    "median": q50, "q16": q16, "q84": q84, "values": v,
                }));
                let cell = format!("{q50:.2} [{q16:.2}, {q84:.2}]");
                cells.push(if v.len() == rs.len() {
                    cell
                } else {
                    format!("{cell} ({} of {})", v.len(), rs.len())
                });
            }
            md += &format!(
                "| {} | {} | {:?} | {} |\n",
                label(trained),
                rs.len(),
                steps,
                cells.join(" | ")
            );
            if let Some(paper) = paper {
                md += &format!(
                    "| paper: {} | | 4000 | {} |\n",
                    label(trained),
                    paper
                        .iter()
                        .map(|(m, p, n)| format!("{m:.2} (+{p:.2}, −{n:.2})"))
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
            }
        }
        let opt: Vec<String> = optimal
            .iter()
            .map(|(f, p)| format!("{:.2}", if metric == "fisher" { f } else { p }))
            .collect();
        md += &format!(
            "| optimal classifier (ours, 10⁶ events per process) | | | {} |\n\
             | paper: optimal classifier | | | 14.97 | 19.12 | 24.93 | 22.13 | 27.98 |\n\
             | analytical bound (ours) | | | {} |\n\
             | paper: analytical likelihood | | | 14.71 | 15.52 | 15.65 | 15.62 | 16.89 |\n\n",
            opt.join(" | "),
            bound
                .iter()
                .map(|v| format!("{v:.2}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    let mut secs: Vec<(String, f64, f64)> = Vec::new();
    for trained in row_names(&results) {
        let trained = trained.as_str();
        let mut s: Vec<f64> = results
            .iter()
            .filter(|r| r.trained == trained)
            .map(|r| r.median_step_seconds)
            .collect();
        let wall: f64 = results
            .iter()
            .filter(|r| r.trained == *trained)
            .map(|r| r.wall_seconds)
            .sum();
        if !s.is_empty() {
            s.sort_by(f64::total_cmp);
            secs.push((trained.to_string(), quantile(&s, 0.5), wall));
        }
    }
    md += "| trained | median step (s) | total wall of its jobs (s) |\n|---|---|---|\n";
    for (t, s, w) in &secs {
        md += &format!("| {} | {s:.3} | {w:.0} |\n", label(t));
    }
    let write = |p: PathBuf, text: String| -> Result<()> {
        std::fs::write(&p, text).map_err(|source| Error::Io {
            path: p.display().to_string(),
            source,
        })
    };
    write(dir.join("table.md"), md.clone())?;
    write(
        dir.join("table.json"),
        serde_json::to_string_pretty(&json).map_err(|source| Error::Json {
            context: "table.json".into(),
            source,
        })?,
    )?;
    print!("{md}");
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seeds = "0-19".to_string();
    let mut steps = 1000usize;
    let mut out = Path::new(ROOT).join("papers/inferno/table");
    let mut runs = Path::new(ROOT).join("runs/inferno_table");
    let mut only: Option<String> = None;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .ok_or_else(|| err(format!("{a} needs a value")))
        };
        match a.as_str() {
            "--seeds" => seeds = val()?,
            "--steps" => steps = val()?.parse().map_err(|e| err(format!("--steps: {e}")))?,
            "--out" => out = PathBuf::from(val()?),
            "--runs" => runs = PathBuf::from(val()?),
            "--only" => only = Some(val()?),
            other => return Err(err(format!("unknown argument '{other}'"))),
        }
    }
    match args.first().map(String::as_str) {
        Some("run") => {
            let rdir = out.join("results");
            std::fs::create_dir_all(&rdir).map_err(|source| Error::Io {
                path: rdir.display().to_string(),
                source,
            })?;
            let table_jobs = [
                "inferno_b0",
                "inferno_b1",
                "inferno_b2",
                "inferno_b3",
                "inferno_b4",
                "bce",
            ];
            let jobs: Vec<&str> = match only.as_deref() {
                Some(list) => list.split(',').collect(),
                None => table_jobs.to_vec(),
            };
            for seed in parse_seeds(&seeds)? {
                for &trained in &jobs {
                    let p = rdir.join(format!("{trained}_seed{seed}.json"));
                    if p.exists() {
                        continue;
                    }
                    let r = job(trained, seed, steps, &runs)?;
                    eprintln!(
                        "{trained} seed {seed}: {:.0} s, σ_s (Fisher) {}",
                        r.wall_seconds,
                        r.evals
                            .iter()
                            .map(|e| e.sigma_s_fisher.map_or("—".into(), |v| format!("{v:.2}")))
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                    let text =
                        serde_json::to_string_pretty(&r).map_err(|source| Error::Json {
                            context: p.display().to_string(),
                            source,
                        })?;
                    std::fs::write(&p, text).map_err(|source| Error::Io {
                        path: p.display().to_string(),
                        source,
                    })?;
                }
            }
            Ok(())
        }
        Some("table") => table(&out),
        _ => Err(err(
            "usage: inferno_table run [--seeds 0-19] [--steps 1000] [--only JOB,JOB] [--out DIR] [--runs DIR] | table [--out DIR]".into(),
        )),
    }
}
