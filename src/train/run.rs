//! Running a configuration end to end: the loop with its progress bar,
//! checkpoints, metrics files and figures; and the comparison of objectives.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::config::{Objective, TrainConfig};
use super::output::{create_dir, metrics_csv, write_json, write_text};
use super::plot;
use super::trainer::{StepRecord, TestMetrics, Trainer};
use crate::nn::Output;
use crate::{Error, Result};

/// How a run is executed (not part of the configuration).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder (created).
    pub out: PathBuf,
    /// Device of the event-level computation.
    pub device: Device,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Write figures.
    pub figures: bool,
}

impl RunOptions {
    /// CPU, progress bar, figures, into `out`.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        RunOptions {
            out: out.into(),
            device: Device::Cpu,
            progress: true,
            figures: true,
        }
    }
}

/// Summary of one finished run (`summary.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    /// Output folder.
    pub out: PathBuf,
    /// Objective trained on.
    pub objective: Objective,
    /// Seed.
    pub seed: u64,
    /// Steps done.
    pub steps: usize,
    /// Number of trainable numbers (network + edge logits).
    pub n_params: usize,
    /// Median wall time of a training step (seconds).
    pub median_step_seconds: f64,
    /// Wall time of the whole run (seconds, this invocation).
    pub wall_seconds: f64,
    /// Best evaluated step by the objective's test metric.
    pub best_step: Option<usize>,
    /// Test metrics at the best step.
    pub best: Option<TestMetrics>,
    /// Test metrics after the last step.
    pub last: Option<TestMetrics>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("—".into(), |x| format!("{x:.3e}"))
}

fn bar(total: usize, done: usize, show: bool, label: &str) -> ProgressBar {
    let pb = if show {
        ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
    {
        pb.set_style(style);
    }
    pb.set_prefix(label.to_string());
    pb.set_position(done as u64);
    pb
}

fn message(r: &StepRecord, last_test: Option<&TestMetrics>) -> String {
    let mut s = format!("loss {:.4e}", r.loss);
    if let Some(t) = last_test {
        s += &format!(
            " | test CLs {} Z0 {} σμ {}",
            fmt_opt(t.cls),
            fmt_opt(t.z0),
            fmt_opt(t.sigma_mu)
        );
    }
    s
}

/// Trains `trainer` to the end of its configuration, writing into
/// `opts.out`: `config.toml`, `metrics.json`, `metrics.csv`, `summary.json`,
/// `checkpoint.json` + `checkpoint.safetensors`, and the figures.
pub fn run(trainer: &mut Trainer, opts: &RunOptions) -> Result<TrainReport> {
    let t0 = Instant::now();
    let out = &opts.out;
    create_dir(out)?;
    let cfg = trainer.config().clone();
    let mut files = Vec::new();
    let cfg_path = out.join("config.toml");
    write_text(&cfg_path, &cfg.to_toml()?)?;
    files.push(cfg_path);
    let total = cfg.total_steps();
    let pb = bar(
        total,
        trainer.step(),
        opts.progress,
        &format!("{} seed {}", cfg.training.objective.name(), cfg.seed),
    );
    let mut last_test = trainer.records().iter().rev().find_map(|r| r.test.clone());
    while !trainer.finished() {
        trainer.train_step()?;
        let r = trainer
            .records()
            .last()
            .cloned()
            .ok_or_else(|| Error::InvalidInput("no record after a step".into()))?;
        if r.test.is_some() {
            last_test = r.test.clone();
        }
        pb.set_message(message(&r, last_test.as_ref()));
        pb.inc(1);
        let every = cfg.training.checkpoint_every;
        if every > 0 && trainer.step().is_multiple_of(every) && !trainer.finished() {
            trainer.save_checkpoint(out, "checkpoint")?;
        }
    }
    pb.finish();
    trainer.save_checkpoint(out, "checkpoint")?;
    files.push(out.join("checkpoint.json"));
    files.push(out.join("checkpoint.safetensors"));

    let records = trainer.records().to_vec();
    let mpath = out.join("metrics.json");
    write_json(&mpath, &records)?;
    files.push(mpath);
    let cpath = out.join("metrics.csv");
    write_text(&cpath, &metrics_csv(&records))?;
    files.push(cpath);

    if opts.figures {
        files.extend(figures(trainer, out)?);
    }

    let mut secs: Vec<f64> = records.iter().map(|r| r.step_seconds).collect();
    secs.sort_by(f64::total_cmp);
    let median = secs.get(secs.len() / 2).copied().unwrap_or(f64::NAN);
    let n_params = trainer.network().n_params()
        + if cfg.histogram.learnable_edges && cfg.network.output == Output::Sigmoid {
            cfg.histogram.bins
        } else {
            0
        };
    let mut report = TrainReport {
        out: out.clone(),
        objective: cfg.training.objective,
        seed: cfg.seed,
        steps: trainer.step(),
        n_params,
        median_step_seconds: median,
        wall_seconds: t0.elapsed().as_secs_f64(),
        best_step: trainer.best().map(|b| b.step),
        best: trainer.best().map(|b| b.metrics.clone()),
        last: last_test,
        files,
    };
    let spath = out.join("summary.json");
    report.files.push(spath.clone());
    write_json(&spath, &report)?;
    Ok(report)
}

fn figures(trainer: &Trainer, out: &Path) -> Result<Vec<PathBuf>> {
    let cfg = trainer.config();
    let mut files = plot::metrics_figure(out, trainer.records(), cfg.training.objective.name())?;
    let names: Vec<String> = trainer
        .toy()
        .processes()
        .into_iter()
        .map(|p| p.name)
        .collect();
    if let Some(best) = trainer.best() {
        let title = format!(
            "test yields at the best step ({}), CLs {}",
            best.step,
            fmt_opt(best.metrics.cls)
        );
        files.extend(plot::yields_figure(out, &best.metrics, &names, &title)?);
    }
    if trainer.toy().n_features() == 2 {
        let fr = trainer.toy().feature_range();
        let (xr, yr) = (fr[0], fr[1]);
        let n = 120;
        let (values, edges, step) = trainer.with_best_weights(|t| {
            let v = t.grid_output(xr, yr, n, n)?;
            let e = match t.best() {
                Some(b) => b.metrics.edges.clone(),
                None => t.edges()?,
            };
            Ok((v, e, t.best().map_or(t.step(), |b| b.step)))
        })?;
        // a few test points per process: the first 150 events of each
        let test = trainer.test_points(150)?;
        let title = format!("network output and bin boundaries (step {step})");
        let edges = if cfg.network.output == Output::Softmax {
            // argmax bins 0..B−1: boundaries between integers
            (0..=cfg.histogram.bins).map(|b| b as f64 - 0.5).collect()
        } else {
            edges
        };
        files.extend(plot::contour_figure(
            out,
            &plot::ContourData {
                x: xr,
                y: yr,
                n,
                values: &values,
                edges: &edges,
                points: &test,
                names: &names,
                title: &title,
            },
        )?);
    }
    Ok(files)
}

/// Trains a configuration from scratch.
pub fn train(cfg: &TrainConfig, opts: &RunOptions) -> Result<TrainReport> {
    let mut t = Trainer::new(cfg, &opts.device)?;
    run(&mut t, opts)
}

/// Resumes from `checkpoint.json` and trains to the end of its configuration.
pub fn resume(checkpoint: &Path, opts: &RunOptions) -> Result<TrainReport> {
    let mut t = Trainer::from_checkpoint(checkpoint, &opts.device)?;
    run(&mut t, opts)
}

/// One row of the comparison table: an objective's test metrics at the end
/// of training, mean and standard deviation over seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareRow {
    /// Objective.
    pub objective: Objective,
    /// Seeds run.
    pub seeds: Vec<u64>,
    /// Final test CLs per seed (`None`: undefined / fit failed).
    pub cls: Vec<Option<f64>>,
    /// Final test Z0 per seed.
    pub z0: Vec<Option<f64>>,
    /// Final test σ_μ per seed.
    pub sigma_mu: Vec<Option<f64>>,
    /// (mean, std) of the defined values of each.
    pub cls_mean_std: Option<(f64, f64)>,
    /// (mean, std) of Z0.
    pub z0_mean_std: Option<(f64, f64)>,
    /// (mean, std) of σ_μ.
    pub sigma_mu_mean_std: Option<(f64, f64)>,
    /// Median step time (s) over the runs.
    pub median_step_seconds: f64,
}

/// Result of [`compare`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareReport {
    /// Output folder.
    pub out: PathBuf,
    /// One row per objective.
    pub rows: Vec<CompareRow>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

fn mean_std(v: &[Option<f64>]) -> Option<(f64, f64)> {
    let x: Vec<f64> = v.iter().flatten().copied().collect();
    if x.is_empty() {
        return None;
    }
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let s = if x.len() > 1 {
        (x.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Some((m, s))
}

fn pm(v: Option<(f64, f64)>) -> String {
    v.map_or("—".into(), |(m, s)| format!("{m:.3e} ± {s:.1e}"))
}

/// Trains every objective of `cfg.compare` for every seed (same data and
/// initial weights per seed across objectives) into `<out>/seed<k>/<objective>/`,
/// and writes `comparison.{json,csv,md}` and `comparison_cls.{svg,png}`
/// (test CLs per step, mean over seeds).
pub fn compare(cfg: &TrainConfig, opts: &RunOptions) -> Result<CompareReport> {
    create_dir(&opts.out)?;
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    for &obj in &cfg.compare.objectives {
        let mut reports = Vec::new();
        let mut sum_curve: Vec<(f64, f64, usize)> = Vec::new();
        for (k, &seed) in cfg.compare.seeds.iter().enumerate() {
            let mut c = cfg.clone();
            c.seed = seed;
            c.training.objective = obj;
            let o = RunOptions {
                out: opts.out.join(format!("seed{seed}")).join(obj.name()),
                figures: opts.figures && k == 0,
                ..opts.clone()
            };
            let mut t = Trainer::new(&c, &o.device)?;
            let r = run(&mut t, &o)?;
            for rec in t.records() {
                if let Some(v) = rec.test.as_ref().and_then(|m| m.cls) {
                    match sum_curve.iter_mut().find(|p| p.0 == rec.step as f64) {
                        Some(p) => {
                            p.1 += v;
                            p.2 += 1;
                        }
                        None => sum_curve.push((rec.step as f64, v, 1)),
                    }
                }
            }
            reports.push(r);
        }
        curves.push((
            obj.name().to_string(),
            sum_curve
                .iter()
                .map(|p| (p.0, p.1 / p.2 as f64))
                .collect::<Vec<_>>(),
        ));
        let cls: Vec<Option<f64>> = reports
            .iter()
            .map(|r| r.last.as_ref().and_then(|m| m.cls))
            .collect();
        let z0: Vec<Option<f64>> = reports
            .iter()
            .map(|r| r.last.as_ref().and_then(|m| m.z0))
            .collect();
        let sm: Vec<Option<f64>> = reports
            .iter()
            .map(|r| r.last.as_ref().and_then(|m| m.sigma_mu))
            .collect();
        let mut secs: Vec<f64> = reports.iter().map(|r| r.median_step_seconds).collect();
        secs.sort_by(f64::total_cmp);
        rows.push(CompareRow {
            objective: obj,
            seeds: cfg.compare.seeds.clone(),
            cls_mean_std: mean_std(&cls),
            z0_mean_std: mean_std(&z0),
            sigma_mu_mean_std: mean_std(&sm),
            cls,
            z0,
            sigma_mu: sm,
            median_step_seconds: secs[secs.len() / 2],
        });
    }
    let mut files = Vec::new();
    let mut csv = String::from("objective,n_seeds,cls_mean,cls_std,z0_mean,z0_std,sigma_mu_mean,sigma_mu_std,median_step_seconds\n");
    let mut md = format!(
        "Test metrics at the end of training (hard histograms, {} test events per process), mean ± std over seeds {:?}.\n\n\
         | objective | test CLs | test Z0 | test σ_μ | step (s) |\n|---|---|---|---|---|\n",
        cfg.toy.n_test, cfg.compare.seeds
    );
    for r in &rows {
        let f = |v: Option<(f64, f64)>| v.map_or(",".into(), |(m, s)| format!("{m:e},{s:e}"));
        csv += &format!(
            "{},{},{},{},{},{}\n",
            r.objective.name(),
            r.seeds.len(),
            f(r.cls_mean_std),
            f(r.z0_mean_std),
            f(r.sigma_mu_mean_std),
            r.median_step_seconds
        );
        md += &format!(
            "| {} | {} | {} | {} | {:.3} |\n",
            r.objective.name(),
            pm(r.cls_mean_std),
            pm(r.z0_mean_std),
            pm(r.sigma_mu_mean_std),
            r.median_step_seconds
        );
    }
    let p = opts.out.join("comparison.csv");
    write_text(&p, &csv)?;
    files.push(p);
    let p = opts.out.join("comparison.md");
    write_text(&p, &md)?;
    files.push(p);
    if opts.figures {
        files.extend(plot::compare_figure(
            &opts.out,
            "comparison_cls",
            &curves,
            "test CLs per step (mean over seeds)",
        )?);
    }
    let mut report = CompareReport {
        out: opts.out.clone(),
        rows,
        files,
    };
    let p = opts.out.join("comparison.json");
    report.files.push(p.clone());
    write_json(&p, &report)?;
    Ok(report)
}

/// The device for a CLI name (`cpu`, or `cuda` with the `cuda` feature).
pub fn device_from_name(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            #[cfg(feature = "cuda")]
            {
                Ok(Device::new_cuda(0)?)
            }
            #[cfg(not(feature = "cuda"))]
            {
                Err(Error::InvalidInput(
                    "--device cuda: this build has no CUDA support (rebuild with --features cuda)"
                        .into(),
                ))
            }
        }
        other => Err(Error::InvalidInput(format!(
            "--device {other}: expected cpu or cuda"
        ))),
    }
}
