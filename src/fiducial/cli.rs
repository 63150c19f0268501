//! `anagrad fiducial-cuts [CONFIG.toml] [--out DIR]`: runs the study, prints
//! the tables and the output folder, writes report.json, reach.json,
//! summary.md and the figure.

use std::path::PathBuf;

use super::config::FiducialConfig;
use super::plot::write_figure;
use super::reach;
use super::run::run as run_study;
use crate::toys::fiducial::FEATURES;
use crate::{Error, Result};

/// The shipped configuration (`configs/fiducial_cuts.toml`), used when no
/// file is given.
pub const DEFAULT_TOML: &str = include_str!("../../configs/fiducial_cuts.toml");

/// Arguments of `anagrad fiducial-cuts`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FiducialCutsArgs {
    /// Configuration (TOML); without it configs/fiducial_cuts.toml (embedded) runs.
    pub config: Option<PathBuf>,
    /// Output folder [default: ./fiducial-cuts].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the number of ensemble members.
    #[arg(long)]
    pub members: Option<usize>,
    /// Override the master seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Skip the Asimov-reach variance study (plain vs importance sampling).
    #[arg(long)]
    pub no_reach: bool,
    /// Skip the SVG/PNG figure.
    #[arg(long)]
    pub no_plots: bool,
    /// Only redraw the figure from an earlier run's report.json (into --out,
    /// default: that report's folder), without running anything.
    #[arg(long, value_name = "REPORT_JSON")]
    pub replot: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn write_json(path: &std::path::Path, value: &impl serde::Serialize) -> Result<PathBuf> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))?;
    std::fs::write(path, text).map_err(io(path))?;
    Ok(path.to_path_buf())
}

/// Runs `anagrad fiducial-cuts`.
pub fn run(args: &FiducialCutsArgs) -> Result<()> {
    if let Some(path) = &args.replot {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let report: super::FiducialReport = serde_json::from_str(&text)
            .map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))?;
        let dir = match (&args.out, path.parent()) {
            (Some(o), _) => o.clone(),
            (None, Some(p)) => p.to_path_buf(),
            (None, None) => PathBuf::from("."),
        };
        for p in write_figure(&dir, &report)? {
            println!("{}", p.display());
        }
        return Ok(());
    }
    let mut cfg = match &args.config {
        Some(p) => FiducialConfig::from_path(p)?,
        None => FiducialConfig::from_toml(DEFAULT_TOML)?,
    };
    if let Some(m) = args.members {
        cfg.ensemble.members = m;
    }
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    cfg.validate()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("fiducial-cuts"));
    let bar = crate::progress::bar(cfg.ensemble.members as u64 + 1, args.quiet, "optimisations");
    let report = run_study(&cfg, &bar)?;
    bar.finish_and_clear();
    let mut summary = report.to_markdown(&FEATURES);
    print!("{summary}");
    std::fs::create_dir_all(&out).map_err(io(&out))?;
    let mut written = vec![write_json(&out.join("report.json"), &report)?];
    if !args.no_reach {
        eprintln!(
            "Asimov-reach variance study ({} replicas) …",
            cfg.reach.replicas
        );
        let table = reach::run(&cfg.toy(), &cfg.reach)?;
        let md = table.to_markdown();
        println!("\n{md}");
        summary.push('\n');
        summary.push_str(&md);
        written.push(write_json(&out.join("reach.json"), &table)?);
    }
    let md = out.join("summary.md");
    std::fs::write(&md, &summary).map_err(io(&md))?;
    written.push(md);
    if !args.no_plots {
        written.extend(write_figure(&out, &report)?);
    }
    println!("output folder: {}", out.display());
    for p in written {
        println!("  {}", p.display());
    }
    Ok(())
}
