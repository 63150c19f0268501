//! Files a training run writes: JSON (pretty, strict: non-finite values are
//! `null`) and CSV of the per-step metrics.

use std::path::Path;

use serde::Serialize;

use super::trainer::StepRecord;
use crate::{Error, Result};

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Creates `dir` (and parents).
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))
}

/// Writes `value` as pretty JSON.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|source| Error::Json {
        context: path.display().to_string(),
        source,
    })?;
    std::fs::write(path, text + "\n").map_err(|e| io(path, e))
}

/// Writes a text file.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| io(path, e))
}

fn cell(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:e}"),
        _ => String::new(),
    }
}

/// Header of the per-step CSV.
pub const CSV_HEADER: &str = "step,epoch,loss,step_seconds,test_cls,test_z0,test_sigma_mu,test_generalised_variance,test_z_asimov,test_bce,test_bce_aug,test_sigma_mu_profile";

/// The per-step records as CSV (test columns empty where not evaluated).
pub fn metrics_csv(records: &[StepRecord]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for r in records {
        let t = r.test.as_ref();
        let cols = [
            r.step.to_string(),
            r.epoch.to_string(),
            format!("{:e}", r.loss),
            format!("{:.6}", r.step_seconds),
            cell(t.and_then(|t| t.cls)),
            cell(t.and_then(|t| t.z0)),
            cell(t.and_then(|t| t.sigma_mu)),
            cell(t.and_then(|t| t.generalised_variance)),
            cell(t.and_then(|t| t.z_asimov)),
            cell(t.and_then(|t| t.bce)),
            cell(t.and_then(|t| t.bce_aug)),
            cell(t.and_then(|t| t.sigma_mu_profile)),
        ];
        s.push_str(&cols.join(","));
        s.push('\n');
    }
    s
}
