//! Study results on disk: `cells.csv` (header exactly
//! `n,ratio,mean,std,true,bias,rmse`, one row per cell), `study.json` (the
//! configuration, every cell, the optima, the run time) and a printed table.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::StudyConfig;
use super::stats::{optimal_ratios, Cell, Optimum};
use crate::{Error, Result};

/// The CSV header, exactly as issue 6 specifies it.
pub const CSV_HEADER: &str = "n,ratio,mean,std,true,bias,rmse";

/// Everything a study produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyReport {
    /// The configuration that was run.
    pub config: StudyConfig,
    /// How the `true` column was obtained.
    pub truth_method: String,
    /// One entry per (N, r), N-major in config order.
    pub cells: Vec<Cell>,
    /// RMSE-optimal r per N.
    pub optima: Vec<Optimum>,
    /// Wall-clock seconds of the study (gradients only, no I/O).
    pub elapsed_s: f64,
    /// Worker threads used.
    pub threads: usize,
}

impl StudyReport {
    /// Builds a report, computing the optima from the cells.
    pub fn new(
        config: StudyConfig,
        truth_method: String,
        cells: Vec<Cell>,
        elapsed_s: f64,
        threads: usize,
    ) -> Self {
        let optima = optimal_ratios(&cells);
        Self {
            config,
            truth_method,
            cells,
            optima,
            elapsed_s,
            threads,
        }
    }
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The CSV text of the cells (floats in shortest round-trip form).
pub fn csv_string(cells: &[Cell]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for c in cells {
        // Writing to a String cannot fail.
        let _ = writeln!(
            s,
            "{},{},{:e},{:e},{:e},{:e},{:e}",
            c.n, c.ratio, c.mean, c.std, c.truth, c.bias, c.rmse
        );
    }
    s
}

/// A fixed-width summary table with the optimum of each N marked `*`.
pub fn summary_table(report: &StudyReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>7} {:>6} {:>13} {:>12} {:>13} {:>13} {:>12}",
        "N", "r", "mean", "std", "true", "bias", "rmse"
    );
    for c in &report.cells {
        let best = report
            .optima
            .iter()
            .any(|o| o.n == c.n && o.ratio == c.ratio);
        let _ = writeln!(
            s,
            "{:>7} {:>6} {:>13.5e} {:>12.4e} {:>13.5e} {:>13.4e} {:>12.4e}{}",
            c.n,
            c.ratio,
            c.mean,
            c.std,
            c.truth,
            c.bias,
            c.rmse,
            if best { " *" } else { "" }
        );
    }
    let opt: Vec<String> = report
        .optima
        .iter()
        .map(|o| format!("N={}: r={}", o.n, o.ratio))
        .collect();
    let _ = writeln!(s, "RMSE-optimal r (*): {}", opt.join(", "));
    s
}

/// Writes `cells.csv` and `study.json` into `dir` (created if needed) and
/// returns their paths.
pub fn write_tables(dir: &Path, report: &StudyReport) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let csv = dir.join("cells.csv");
    std::fs::write(&csv, csv_string(&report.cells)).map_err(|e| io_err(&csv, e))?;
    let json = dir.join("study.json");
    let text = serde_json::to_string_pretty(report).map_err(|source| Error::Json {
        context: json.display().to_string(),
        source,
    })?;
    std::fs::write(&json, text + "\n").map_err(|e| io_err(&json, e))?;
    Ok(vec![csv, json])
}
