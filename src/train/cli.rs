//! `anagrad train`: arguments and entry point (the binary only parses and
//! calls [`run`]).

use std::path::PathBuf;

use clap::Args;

use super::config::TrainConfig;
use super::run::{compare, device_from_name, resume, train, RunOptions};
use crate::Result;

/// Arguments of `anagrad train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Training configuration (TOML); without it the embedded default runs
    /// (blobs, objective cls, 2→1024→1024→1, see configs/train_default.toml).
    pub config: Option<PathBuf>,
    /// Output folder (default: runs/train, or runs/compare with --compare).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Device of the event-level computation: cpu or cuda (needs the `cuda`
    /// feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Train every objective of [compare] (default cls, bce, bce_aug,
    /// poi_uncert) with the same seeds, and write a comparison table and figure.
    #[arg(long)]
    pub compare: bool,
    /// Resume from a checkpoint.json written by an earlier run (the
    /// configuration is the checkpoint's; CONFIG is not allowed with it).
    #[arg(long, conflicts_with_all = ["config", "compare"])]
    pub resume: Option<PathBuf>,
    /// Do not show a progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Do not draw figures.
    #[arg(long)]
    pub no_figures: bool,
}

/// Runs `anagrad train` and prints where the results went.
pub fn run(args: &TrainArgs) -> Result<()> {
    let device = device_from_name(&args.device)?;
    let default_out = if args.compare {
        "runs/compare"
    } else {
        "runs/train"
    };
    let opts = RunOptions {
        out: args.out.clone().unwrap_or_else(|| default_out.into()),
        device,
        progress: !args.quiet,
        figures: !args.no_figures,
    };
    if let Some(ck) = &args.resume {
        let r = resume(ck, &opts)?;
        println!(
            "resumed to step {}; results in {}",
            r.steps,
            r.out.display()
        );
        return Ok(());
    }
    let cfg = match &args.config {
        Some(p) => TrainConfig::from_path(p)?,
        None => TrainConfig::embedded_default()?,
    };
    println!("writing results to {}", opts.out.display());
    if args.compare {
        let r = compare(&cfg, &opts)?;
        for f in &r.files {
            if f.extension().is_some_and(|e| e == "md") {
                if let Ok(t) = std::fs::read_to_string(f) {
                    println!("{t}");
                }
            }
        }
        println!("comparison written to {}", r.out.display());
    } else {
        let r = train(&cfg, &opts)?;
        let f = |v: Option<f64>| v.map_or("—".into(), |x| format!("{x:.4e}"));
        if let Some(b) = &r.best {
            println!(
                "best step {} of {}: test CLs {}, Z0 {}, σ_μ {}",
                r.best_step.unwrap_or(0),
                r.steps,
                f(b.cls),
                f(b.z0),
                f(b.sigma_mu)
            );
        }
        println!(
            "median step {:.3} s; results in {}",
            r.median_step_seconds,
            r.out.display()
        );
    }
    Ok(())
}
