//! The study engine: for every sample size N and ratio r, the gradients of
//! `datasets` seeded datasets, aggregated per cell.
//!
//! Dataset d of sample size N is drawn from a `StdRng` seeded with
//! (seed, N, d) and reused for every ratio (common random numbers: the
//! differences between ratios, and so the optimum, are less noisy than with
//! independent draws). Datasets run in parallel (rayon); each cell's values
//! are aggregated in dataset order, so results do not depend on the thread
//! count.

use std::time::Instant;

use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;

use super::config::StudyConfig;
use super::output::StudyReport;
use super::pipeline::{Dataset, Pipeline};
use super::stats::{Cell, Welford};
use crate::Result;

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The seed of dataset `d` at sample size `n`.
pub fn dataset_seed(seed: u64, n: usize, d: usize) -> u64 {
    splitmix64(seed ^ splitmix64((n as u64) ^ splitmix64(d as u64)))
}

/// The dataset `d` at sample size `n` of a study with master seed `seed`.
pub fn dataset(seed: u64, n: usize, d: usize) -> Dataset {
    let mut rng = StdRng::seed_from_u64(dataset_seed(seed, n, d));
    Dataset::draw(&mut rng, n)
}

/// Gradients of every dataset for one N: `out[r][d]`.
pub fn gradients_for_n(
    cfg: &StudyConfig,
    pipeline: &Pipeline,
    n: usize,
    bar: &ProgressBar,
) -> Result<Vec<Vec<f64>>> {
    let width = cfg.binning.width();
    let per_dataset: Vec<Vec<f64>> = (0..cfg.datasets)
        .into_par_iter()
        .map(|d| -> Result<Vec<f64>> {
            let data = dataset(cfg.seed, n, d);
            let g = cfg
                .ratios
                .iter()
                .map(|&r| pipeline.gradient(&data, r * width))
                .collect::<Result<Vec<f64>>>()?;
            bar.inc(cfg.ratios.len() as u64);
            Ok(g)
        })
        .collect::<Result<_>>()?;
    Ok((0..cfg.ratios.len())
        .map(|ri| per_dataset.iter().map(|g| g[ri]).collect())
        .collect())
}

/// Runs a whole study (no I/O). `bar` advances by one per gradient.
pub fn run_study(cfg: &StudyConfig, bar: &ProgressBar) -> Result<StudyReport> {
    let pipeline = Pipeline::new(cfg)?;
    let start = Instant::now();
    let width = cfg.binning.width();
    let mut cells = Vec::with_capacity(cfg.ns.len() * cfg.ratios.len());
    for &n in &cfg.ns {
        bar.set_message(format!("N = {n}"));
        let grads = gradients_for_n(cfg, &pipeline, n, bar)?;
        let (_, truth) = pipeline.truth(n)?;
        for (&r, g) in cfg.ratios.iter().zip(&grads) {
            let acc: Welford = g.iter().copied().collect();
            cells.push(Cell::new(n, r, r * width, &acc, truth, 0.0));
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(StudyReport::new(
        cfg.clone(),
        pipeline.truth_method().to_string(),
        cells,
        elapsed,
        rayon::current_num_threads(),
    ))
}
