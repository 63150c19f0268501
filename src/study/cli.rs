//! `anagrad bandwidth-study [CONFIG.toml] [--out DIR]`: runs a study, prints
//! the summary table and the output folder, writes tables and figures.

use std::path::PathBuf;

use super::bandwidth::run_study;
use super::config::StudyConfig;
use super::output::{summary_table, write_tables};
use super::plot::write_figures;
use crate::Result;

/// Arguments of `anagrad bandwidth-study`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BandwidthStudyArgs {
    /// Study configuration (TOML); without it the default study of issue 6 runs.
    pub config: Option<PathBuf>,
    /// Output folder for cells.csv, study.json and the figures
    /// [default: ./bandwidth-study].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the number of datasets per cell.
    #[arg(long)]
    pub datasets: Option<usize>,
    /// Override the master seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Skip the SVG/PNG figures.
    #[arg(long)]
    pub no_plots: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

impl BandwidthStudyArgs {
    /// The configuration these arguments select (file or default, then overrides), validated.
    pub fn resolve_config(&self) -> Result<StudyConfig> {
        let mut cfg = match &self.config {
            Some(path) => StudyConfig::from_path(path)?,
            None => StudyConfig::default(),
        };
        if let Some(d) = self.datasets {
            cfg.datasets = d;
        }
        if let Some(s) = self.seed {
            cfg.seed = s;
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Runs `anagrad bandwidth-study`.
pub fn run(args: &BandwidthStudyArgs) -> Result<()> {
    let cfg = args.resolve_config()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("bandwidth-study"));
    let bar = crate::progress::bar(cfg.evaluations(), args.quiet, "gradients");
    let report = run_study(&cfg, &bar)?;
    bar.finish_and_clear();
    print!("{}", summary_table(&report));
    println!(
        "{} gradients in {:.2} s on {} threads ({})",
        cfg.evaluations(),
        report.elapsed_s,
        report.threads,
        report.truth_method
    );
    let mut written = write_tables(&out, &report)?;
    if !args.no_plots {
        written.extend(write_figures(&out, &report)?);
    }
    println!("output folder: {}", out.display());
    for p in written {
        println!("  {}", p.display());
    }
    Ok(())
}
