//! Toy-based hypothesis tests with the semantics of pyhf 0.7.6's
//! `ToyCalculator`: pseudo-data drawn at the conditional fits to the observed
//! data (POI = μ for signal-plus-background, POI = 0 for background; 1 and 0
//! for q0), the test statistic refitted on every toy with the global fit,
//! empirical p-values `#(t ≥ t_obs)/N`, CLs = CLs+b/CLb, and the expected
//! band from the percentiles (numpy's linear interpolation) of the p-values
//! evaluated at every background toy's statistic.
//!
//! Toy `i` of a hypothesis is drawn from its own generator, seeded from
//! `(seed, hypothesis, i)`: an ensemble is bitwise independent of the number
//! of threads and can be split into shards (toys `i ≡ k mod n`) whose
//! [`ToyDistributions::merge`] equals the unsharded run. A toy whose fits
//! fail is retried from the suggested inits; if it still fails it is counted
//! and reported in the result, never silently dropped, and never fatal.

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::fit::{fit, fixed_poi_fit, minimize, FitOptions, FitSetup};
use super::teststat::{statistic_from_fits, test_statistic, TestStat};
use super::Likelihood;
use crate::{Error, Result};

/// A part of an ensemble: the toys `i` with `i % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard's number, `0..count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// The whole ensemble.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `K/N` with `1 ≤ K ≤ N` (one-based, as job arrays count).
    pub fn parse(s: &str) -> Result<Shard> {
        let bad = || Error::InvalidInput(format!("shard '{s}': expected K/N with 1 <= K <= N"));
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if k == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard {
            index: k - 1,
            count: n,
        })
    }

    /// The toy indices of this shard among `ntoys`.
    pub fn indices(&self, ntoys: usize) -> Vec<usize> {
        (self.index..ntoys).step_by(self.count.max(1)).collect()
    }
}

/// Options of a toy ensemble.
#[derive(Debug, Clone)]
pub struct ToyOptions {
    /// Toys per hypothesis (pyhf's `ntoys`).
    pub ntoys: usize,
    /// Master seed.
    pub seed: u64,
    /// Which part of the ensemble to run.
    pub shard: Shard,
    /// Options of every fit.
    pub fit: FitOptions,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl Default for ToyOptions {
    fn default() -> Self {
        ToyOptions {
            ntoys: 2000,
            seed: 0,
            shard: Shard::ALL,
            fit: FitOptions::default(),
            progress: false,
        }
    }
}

/// The test statistics of one hypothesis' toys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToyEnsemble {
    /// POI value the toys were generated at.
    pub generating_poi: f64,
    /// Parameters the toys were generated at (the conditional fit).
    pub generating_pars: Vec<f64>,
    /// Toy indices (increasing).
    pub indices: Vec<usize>,
    /// Test statistic of each toy; `None` where its fits failed.
    pub values: Vec<Option<f64>>,
    /// Why each failed toy failed: `(index, message)`.
    pub failures: Vec<(usize, String)>,
}

impl ToyEnsemble {
    /// The statistics of the toys that succeeded.
    pub fn samples(&self) -> Vec<f64> {
        self.values.iter().flatten().copied().collect()
    }
}

/// Both toy distributions of a test at one POI value, with the observed
/// statistic: what pyhf's `ToyCalculator.distributions` and
/// `teststatistic` return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToyDistributions {
    /// Tested POI value.
    pub poi_test: f64,
    /// `qtilde`, `q` or `q0`.
    pub test_stat: String,
    /// Master seed.
    pub seed: u64,
    /// Toys per hypothesis in the whole ensemble.
    pub ntoys: usize,
    /// Shards merged into this one (all of them: `count` entries).
    pub shards: Vec<Shard>,
    /// The statistic on the observed data.
    pub observed: f64,
    /// Signal-plus-background toys (POI = `poi_test`; for q0: POI = 0).
    pub signal_plus_background: ToyEnsemble,
    /// Background toys (POI = 0; for q0: POI = 1).
    pub background: ToyEnsemble,
}

/// Result of a toy-based hypothesis test (pyhf's `hypotest(...,
/// calctype="toybased", return_tail_probs=True, return_expected_set=True)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToyHypotestResult {
    /// Tested POI value.
    pub poi_test: f64,
    /// `qtilde`, `q` or `q0`.
    pub test_stat: String,
    /// Observed CLs (for q0: the p-value p0 = CLs+b, as pyhf returns it).
    #[serde(rename = "CLs_obs")]
    pub cls_obs: f64,
    /// Observed CLs+b.
    #[serde(rename = "CLsb_obs")]
    pub clsb_obs: f64,
    /// Observed CLb.
    #[serde(rename = "CLb_obs")]
    pub clb_obs: f64,
    /// Expected CLs band (percentiles 2.3, 15.9, 50, 84.1, 97.7 over the
    /// background toys: pyhf's order, n_sigma = 2 … −2).
    #[serde(rename = "CLs_exp")]
    pub cls_exp: [f64; 5],
    /// Expected CLs+b band.
    #[serde(rename = "CLsb_exp")]
    pub clsb_exp: [f64; 5],
    /// Expected CLb band.
    #[serde(rename = "CLb_exp")]
    pub clb_exp: [f64; 5],
    /// The statistic on the observed data.
    pub teststat: f64,
    /// Successful signal-plus-background / background toys.
    pub ntoys: [usize; 2],
    /// Failed signal-plus-background / background toys (left out of the p-values).
    pub failed: [usize; 2],
}

/// pyhf's normal percentiles of the expected band.
const BAND_PERCENTILES: [f64; 5] = [2.27501319, 15.86552539, 50.0, 84.13447461, 97.72498681];

/// `#(samples ≥ value) / N` (pyhf's `EmpiricalDistribution.pvalue`).
pub fn empirical_pvalue(samples: &[f64], value: f64) -> f64 {
    samples.iter().filter(|&&t| t >= value).count() as f64 / samples.len() as f64
}

/// `#(x ≥ value) / N` for sorted `x` (= [`empirical_pvalue`]).
fn tail_fraction(sorted: &[f64], value: f64) -> f64 {
    (sorted.len() - sorted.partition_point(|&t| t < value)) as f64 / sorted.len() as f64
}

/// numpy's `percentile(x, p)` with linear interpolation, `x` sorted.
pub fn percentile_sorted(x: &[f64], p: f64) -> f64 {
    let n = x.len();
    if n == 0 {
        return f64::NAN;
    }
    let pos = p / 100.0 * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let w = pos - lo as f64;
    x[lo] + w * (x[hi] - x[lo])
}

/// SplitMix64's finaliser: decorrelates related seeds (toy indices,
/// hypotheses, grid points) before they seed a generator.
pub fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator of toy `i` of hypothesis `hyp` (0: s+b, 1: b) of a run
/// with master seed `seed`.
pub fn toy_rng(seed: u64, hyp: u64, i: u64) -> StdRng {
    StdRng::seed_from_u64(splitmix(splitmix(splitmix(seed) ^ hyp) ^ i))
}

fn stat_name(stat: TestStat) -> String {
    stat.to_string()
}

/// The statistic on one toy: the global free fit warm-started at the
/// generating point, then the fixed-POI fit; on failure both again from the
/// suggested inits.
fn toy_statistic<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    mu: f64,
    stat: TestStat,
    gen: &[f64],
    setup: &FitSetup,
    opts: &FitOptions,
) -> Result<f64> {
    let poi = model
        .poi_index()
        .ok_or_else(|| Error::InvalidInput("the model has no parameter of interest".into()))?;
    let warm = || -> Result<f64> {
        let free = minimize(model, data, setup, Some(gen), opts, "toy: free fit")?;
        let fixed = fixed_poi_fit(model, data, mu, setup, Some(&free.pars), opts)?;
        Ok(statistic_from_fits(stat, mu, &fixed, &free, poi))
    };
    warm().or_else(|first| {
        test_statistic(stat, model, data, mu, setup, opts)
            .map(|t| t.value)
            .map_err(|e| Error::FitFailed {
                context: "toy".into(),
                message: format!("warm-started: {first}; from the inits: {e}"),
            })
    })
}

#[allow(clippy::too_many_arguments)]
fn ensemble<L: Likelihood + ?Sized>(
    model: &L,
    gen: Vec<f64>,
    generating_poi: f64,
    hyp: u64,
    mu: f64,
    stat: TestStat,
    setup: &FitSetup,
    opts: &ToyOptions,
    bar: Option<&indicatif::ProgressBar>,
) -> ToyEnsemble {
    use rayon::prelude::*;
    let indices = opts.shard.indices(opts.ntoys);
    let results: Vec<std::result::Result<f64, String>> = indices
        .par_iter()
        .map(|&i| {
            let mut rng = toy_rng(opts.seed, hyp, i as u64);
            let r = model
                .sample_data(&gen, &mut rng)
                .and_then(|d| toy_statistic(model, &d, mu, stat, &gen, setup, &opts.fit))
                .map_err(|e| e.to_string());
            if let Some(b) = bar {
                b.inc(1);
            }
            r
        })
        .collect();
    let mut values = Vec::with_capacity(indices.len());
    let mut failures = Vec::new();
    for (&i, r) in indices.iter().zip(results) {
        match r {
            Ok(t) => values.push(Some(t)),
            Err(e) => {
                values.push(None);
                failures.push((i, e));
            }
        }
    }
    ToyEnsemble {
        generating_poi,
        generating_pars: gen,
        indices,
        values,
        failures,
    }
}

/// The two toy distributions at `poi_test` and the observed statistic
/// (pyhf's `ToyCalculator(data, model, test_stat=..., ntoys=...)
/// .distributions(poi_test)` and `.teststatistic(poi_test)`), for the
/// shard in `opts`.
pub fn toy_distributions<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    poi_test: f64,
    stat: TestStat,
    setup: &FitSetup,
    opts: &ToyOptions,
) -> Result<ToyDistributions> {
    if opts.ntoys == 0 {
        return Err(Error::InvalidInput("ntoys must be at least 1".into()));
    }
    if opts.shard.count == 0 || opts.shard.index >= opts.shard.count {
        return Err(Error::InvalidInput(format!(
            "invalid shard {}/{}",
            opts.shard.index + 1,
            opts.shard.count
        )));
    }
    let (mu_sb, mu_b) = if stat == TestStat::Q0 {
        (0.0, 1.0)
    } else {
        (poi_test, 0.0)
    };
    let observed = test_statistic(stat, model, data, poi_test, setup, &opts.fit)?.value;
    let gen_sb = fixed_poi_fit(model, data, mu_sb, setup, None, &opts.fit)?
        .pars
        .clone();
    let gen_b = fixed_poi_fit(model, data, mu_b, setup, None, &opts.fit)?
        .pars
        .clone();
    let bar = opts.progress.then(|| {
        let n = 2 * opts.shard.indices(opts.ntoys).len();
        let b = indicatif::ProgressBar::new(n as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "toys {bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let sb = ensemble(
        model,
        gen_sb,
        mu_sb,
        0,
        poi_test,
        stat,
        setup,
        opts,
        bar.as_ref(),
    );
    let b = ensemble(
        model,
        gen_b,
        mu_b,
        1,
        poi_test,
        stat,
        setup,
        opts,
        bar.as_ref(),
    );
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(ToyDistributions {
        poi_test,
        test_stat: stat_name(stat),
        seed: opts.seed,
        ntoys: opts.ntoys,
        shards: vec![opts.shard],
        observed,
        signal_plus_background: sb,
        background: b,
    })
}

impl ToyDistributions {
    /// Merges the shards of one ensemble (same test, seed and size) into
    /// the distributions the unsharded run gives, bit for bit.
    pub fn merge(parts: Vec<ToyDistributions>) -> Result<ToyDistributions> {
        let mut it = parts.into_iter();
        let mut out = it
            .next()
            .ok_or_else(|| Error::InvalidInput("toys merge: nothing to merge".into()))?;
        for p in it {
            let same = p.poi_test == out.poi_test
                && p.test_stat == out.test_stat
                && p.seed == out.seed
                && p.ntoys == out.ntoys
                && p.observed == out.observed
                && p.signal_plus_background.generating_pars
                    == out.signal_plus_background.generating_pars
                && p.background.generating_pars == out.background.generating_pars;
            if !same {
                return Err(Error::InvalidInput(format!(
                    "toys merge: shard {:?} belongs to another ensemble (POI {}, {}, seed {}, {} toys) than the first (POI {}, {}, seed {}, {} toys)",
                    p.shards, p.poi_test, p.test_stat, p.seed, p.ntoys, out.poi_test, out.test_stat, out.seed, out.ntoys
                )));
            }
            if let Some(s) = p.shards.iter().find(|s| out.shards.contains(s)) {
                return Err(Error::InvalidInput(format!(
                    "toys merge: shard {}/{} appears twice",
                    s.index + 1,
                    s.count
                )));
            }
            out.shards.extend(p.shards);
            merge_ensemble(&mut out.signal_plus_background, p.signal_plus_background)?;
            merge_ensemble(&mut out.background, p.background)?;
        }
        out.shards.sort_by_key(|s| (s.count, s.index));
        Ok(out)
    }

    /// Whether the merged shards cover the whole ensemble.
    pub fn is_complete(&self) -> bool {
        self.signal_plus_background.indices.len() == self.ntoys
            && self.background.indices.len() == self.ntoys
    }

    /// CLs+b, CLb, CLs and their expected bands from the distributions.
    pub fn result(&self) -> Result<ToyHypotestResult> {
        let sb = self.signal_plus_background.samples();
        let b = self.background.samples();
        if sb.is_empty() || b.is_empty() {
            return Err(Error::FitFailed {
                context: "toys".into(),
                message: format!(
                    "every toy of a hypothesis failed ({} s+b and {} b failures); first: {:?}",
                    self.signal_plus_background.failures.len(),
                    self.background.failures.len(),
                    self.signal_plus_background
                        .failures
                        .first()
                        .or(self.background.failures.first())
                ),
            });
        }
        // Sorted copies: each p-value is a binary search (O(N log N) for
        // the band instead of O(N²)), the same counts as `empirical_pvalue`.
        let (mut sb_sorted, mut b_sorted) = (sb.clone(), b.clone());
        sb_sorted.sort_by(f64::total_cmp);
        b_sorted.sort_by(f64::total_cmp);
        let pv = |t: f64| {
            let clsb = tail_fraction(&sb_sorted, t);
            let clb = tail_fraction(&b_sorted, t);
            (clsb, clb, clsb / clb)
        };
        let (clsb_obs, clb_obs, cls_obs) = pv(self.observed);
        let mut bands: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for &t in &b {
            let (x, y, z) = pv(t);
            bands[0].push(x);
            bands[1].push(y);
            bands[2].push(z);
        }
        let pct = |mut v: Vec<f64>| -> [f64; 5] {
            v.sort_by(f64::total_cmp);
            BAND_PERCENTILES.map(|p| percentile_sorted(&v, p))
        };
        let [bsb, bb, bs] = bands;
        Ok(ToyHypotestResult {
            poi_test: self.poi_test,
            test_stat: self.test_stat.clone(),
            cls_obs: if self.test_stat == "q0" {
                clsb_obs
            } else {
                cls_obs
            },
            clsb_obs,
            clb_obs,
            cls_exp: if self.test_stat == "q0" {
                pct(bsb.clone())
            } else {
                pct(bs)
            },
            clsb_exp: pct(bsb),
            clb_exp: pct(bb),
            teststat: self.observed,
            ntoys: [sb.len(), b.len()],
            failed: [
                self.signal_plus_background.failures.len(),
                self.background.failures.len(),
            ],
        })
    }
}

fn merge_ensemble(a: &mut ToyEnsemble, b: ToyEnsemble) -> Result<()> {
    let mut rows: Vec<(usize, Option<f64>)> = a
        .indices
        .iter()
        .copied()
        .zip(a.values.iter().copied())
        .chain(b.indices.into_iter().zip(b.values))
        .collect();
    rows.sort_by_key(|r| r.0);
    if rows.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(Error::InvalidInput(
            "toys merge: overlapping toy indices".into(),
        ));
    }
    a.indices = rows.iter().map(|r| r.0).collect();
    a.values = rows.iter().map(|r| r.1).collect();
    a.failures.extend(b.failures);
    a.failures.sort_by_key(|f| f.0);
    Ok(())
}

/// A toy-based hypothesis test at `poi_test` (the whole ensemble, or the
/// shard in `opts` whose partial result is then only indicative).
pub fn hypotest_toys<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    poi_test: f64,
    stat: TestStat,
    setup: &FitSetup,
    opts: &ToyOptions,
) -> Result<ToyHypotestResult> {
    toy_distributions(model, data, poi_test, stat, setup, opts)?.result()
}

/// Toy-based upper limit on a scan (pyhf's `upper_limit(..., scan)` with
/// toys): CLs at every grid point (each with its own toys: seeds differ per
/// point) and the crossing of `level` by linear interpolation, observed and
/// expected. Returns `(observed, expected band, the tests)`. See
/// [`upper_limit_toys_refined`] for a root search beyond the grid.
pub fn upper_limit_toys<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    grid: &[f64],
    level: f64,
    stat: TestStat,
    setup: &FitSetup,
    opts: &ToyOptions,
) -> Result<(f64, [f64; 5], Vec<ToyHypotestResult>)> {
    upper_limit_toys_refined(model, data, grid, level, stat, setup, opts, 0)
}

/// [`upper_limit_toys`] followed by `refine` rounds of root finding on the
/// interpolated CLs (regula falsi): each round tests, with new toys, the
/// current crossing of every curve (observed and the five expected) that
/// is not yet a tested point, and re-interpolates over all tested points.
/// With toys CLs is noisy, so the refinement converges to the root within
/// the toys' statistical error, not to machine precision.
#[allow(clippy::too_many_arguments)]
pub fn upper_limit_toys_refined<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    grid: &[f64],
    level: f64,
    stat: TestStat,
    setup: &FitSetup,
    opts: &ToyOptions,
    refine: usize,
) -> Result<(f64, [f64; 5], Vec<ToyHypotestResult>)> {
    if grid.len() < 2 {
        return Err(Error::InvalidInput(
            "toy upper limit: the grid needs at least 2 points".into(),
        ));
    }
    let mut tested: Vec<ToyHypotestResult> = Vec::with_capacity(grid.len());
    let mut k = 0u64;
    let mut test_at = |mu: f64, tested: &mut Vec<ToyHypotestResult>| -> Result<()> {
        let o = ToyOptions {
            seed: splitmix(opts.seed ^ k.wrapping_mul(0x2545_F491_4F6C_DD1D)),
            ..opts.clone()
        };
        k += 1;
        tested.push(hypotest_toys(model, data, mu, stat, setup, &o)?);
        Ok(())
    };
    for &mu in grid {
        test_at(mu, &mut tested)?;
    }
    let curve = |r: &ToyHypotestResult, c: usize| if c == 0 { r.cls_obs } else { r.cls_exp[c - 1] };
    let limits = |tested: &[ToyHypotestResult]| -> [f64; 6] {
        let mut t: Vec<&ToyHypotestResult> = tested.iter().collect();
        t.sort_by(|a, b| a.poi_test.total_cmp(&b.poi_test));
        let mus_rev: Vec<f64> = t.iter().rev().map(|r| r.poi_test).collect();
        [0, 1, 2, 3, 4, 5].map(|c| {
            let xp: Vec<f64> = t.iter().rev().map(|r| curve(r, c)).collect();
            super::limits::interp(level, &xp, &mus_rev)
        })
    };
    for _ in 0..refine {
        let roots = limits(&tested);
        let mut new: Vec<f64> = Vec::new();
        for mu in roots {
            let known = tested.iter().any(|r| r.poi_test == mu) || new.contains(&mu);
            if mu.is_finite() && !known {
                new.push(mu);
            }
        }
        if new.is_empty() {
            break;
        }
        for mu in new {
            test_at(mu, &mut tested)?;
        }
    }
    tested.sort_by(|a, b| a.poi_test.total_cmp(&b.poi_test));
    let l = limits(&tested);
    Ok((l[0], [l[1], l[2], l[3], l[4], l[5]], tested))
}

/// The free fit's POI on the observed data (used to seed scan grids).
pub fn observed_muhat<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    setup: &FitSetup,
    opts: &FitOptions,
) -> Result<f64> {
    let poi = model
        .poi_index()
        .ok_or_else(|| Error::InvalidInput("the model has no parameter of interest".into()))?;
    Ok(fit(model, data, setup, opts)?.pars[poi])
}

/// The test-statistic values at the band's percentiles of the background
/// toys (2.3 … 97.7 %): where the expected CLs band sits on the axis of the
/// statistic (its order is reversed w.r.t. `CLs_exp`, since CLs falls with t).
pub fn statistic_band(background: &[f64]) -> [f64; 5] {
    let mut v = background.to_vec();
    v.sort_by(f64::total_cmp);
    BAND_PERCENTILES.map(|p| percentile_sorted(&v, p))
}

/// Writes `distributions.json` (the [`ToyDistributions`]), `result.json`
/// (the [`ToyHypotestResult`], pyhf's keys) and the figure
/// `distributions.svg`/`.png` into `dir` (created if needed); returns the
/// paths written. `stem` replaces `distributions` (e.g. a shard's name).
pub fn write_outputs(
    dir: &std::path::Path,
    stem: &str,
    d: &ToyDistributions,
    r: Option<&ToyHypotestResult>,
) -> Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        path: dir.display().to_string(),
        source: e,
    })?;
    let mut written = Vec::new();
    let dpath = dir.join(format!("{stem}.json"));
    write_json(&dpath, d)?;
    written.push(dpath);
    if let Some(r) = r {
        let rpath = dir.join(format!("{stem}_result.json"));
        write_json(&rpath, r)?;
        written.push(rpath);
    }
    written.extend(plot::plot_distributions(dir, stem, d, r)?);
    Ok(written)
}

/// Writes `v` as pretty JSON to `path`.
pub fn write_json<T: Serialize>(path: &std::path::Path, v: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::Json {
        context: path.display().to_string(),
        source: e,
    })?;
    std::fs::write(path, text + "\n").map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })
}

/// The figure of a toy test: both test-statistic distributions (histograms,
/// log counts), the observed statistic, and the expected band as the
/// background toys' ±1σ/±2σ range of the statistic with its median.
pub mod plot {
    use std::path::{Path, PathBuf};

    use plotters::coord::Shift;
    use plotters::prelude::*;

    use super::{statistic_band, ToyDistributions, ToyHypotestResult};
    use crate::study::plot::{plot_err as perr, register_font, COLORS};
    use crate::Result;

    /// Writes `<stem>.svg` and `<stem>.png` into `dir`.
    pub fn plot_distributions(
        dir: &Path,
        stem: &str,
        d: &ToyDistributions,
        r: Option<&ToyHypotestResult>,
    ) -> Result<Vec<PathBuf>> {
        register_font().map_err(|m| perr(dir, m))?;
        let svg = dir.join(format!("{stem}.svg"));
        draw(
            SVGBackend::new(&svg, (820, 560)).into_drawing_area(),
            &svg,
            d,
            r,
        )?;
        let png = dir.join(format!("{stem}.png"));
        draw(
            BitMapBackend::new(&png, (820, 560)).into_drawing_area(),
            &png,
            d,
            r,
        )?;
        Ok(vec![svg, png])
    }

    /// Histogram counts of `x` on `nbins` equal bins over `[lo, hi]`
    /// (values beyond `hi` in the last bin).
    fn counts(x: &[f64], lo: f64, hi: f64, nbins: usize) -> Vec<f64> {
        let mut c = vec![0.0; nbins];
        let w = (hi - lo) / nbins as f64;
        for &v in x {
            let k = (((v - lo) / w).floor().max(0.0) as usize).min(nbins - 1);
            c[k] += 1.0;
        }
        c
    }

    fn draw<DB: DrawingBackend>(
        root: DrawingArea<DB, Shift>,
        path: &Path,
        d: &ToyDistributions,
        r: Option<&ToyHypotestResult>,
    ) -> Result<()> {
        root.fill(&WHITE).map_err(|e| perr(path, e))?;
        let sb = d.signal_plus_background.samples();
        let b = d.background.samples();
        let mut all: Vec<f64> = sb.iter().chain(&b).copied().collect();
        all.sort_by(f64::total_cmp);
        let top = if all.is_empty() {
            1.0
        } else {
            super::percentile_sorted(&all, 99.5)
        };
        let hi = top.max(d.observed * 1.1).max(1e-3);
        let nbins = 40;
        let (csb, cb) = (counts(&sb, 0.0, hi, nbins), counts(&b, 0.0, hi, nbins));
        let ymax = csb.iter().chain(&cb).fold(1.0f64, |a, &v| a.max(v));
        let floor = 0.5;
        let title = format!(
            "{} toys at POI = {} ({} s+b, {} b)",
            d.test_stat,
            d.poi_test,
            sb.len(),
            b.len()
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..hi, (floor..ymax * 3.0).log_scale())
            .map_err(|e| perr(path, e))?;
        chart
            .configure_mesh()
            .x_desc(format!("test statistic {}", d.test_stat))
            .y_desc("toys per bin")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .map_err(|e| perr(path, e))?;
        // The expected band: the background toys' statistic at ±2σ, ±1σ.
        if !b.is_empty() {
            let q = statistic_band(&b);
            let yellow = RGBColor(255, 223, 0).mix(0.35);
            let green = RGBColor(0, 200, 0).mix(0.35);
            for (a, z, c, label) in [
                (q[0], q[4], yellow, "expected ±2σ (b toys)"),
                (q[1], q[3], green, "expected ±1σ (b toys)"),
            ] {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(a, floor), (z, ymax * 3.0)],
                        c.filled(),
                    )))
                    .map_err(|e| perr(path, e))?
                    .label(label)
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 16, y + 5)], c.filled())
                    });
            }
            chart
                .draw_series(DashedLineSeries::new(
                    [(q[2], floor), (q[2], ymax * 3.0)],
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))
                .map_err(|e| perr(path, e))?
                .label("expected median")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK));
        }
        let w = hi / nbins as f64;
        for (c, color, label) in [
            (&csb, COLORS[3], "signal + background"),
            (&cb, COLORS[0], "background only"),
        ] {
            let mut pts = Vec::with_capacity(2 * nbins + 2);
            for (k, &n) in c.iter().enumerate() {
                let y = n.max(floor);
                pts.push((k as f64 * w, y));
                pts.push(((k + 1) as f64 * w, y));
            }
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(|e| perr(path, e))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        let obs_label = match r {
            Some(r) => format!(
                "observed {} = {:.3} (CLs = {:.3})",
                d.test_stat, d.observed, r.cls_obs
            ),
            None => format!("observed {} = {:.3}", d.test_stat, d.observed),
        };
        chart
            .draw_series(LineSeries::new(
                [(d.observed, floor), (d.observed, ymax * 3.0)],
                BLACK.stroke_width(3),
            ))
            .map_err(|e| perr(path, e))?
            .label(obs_label)
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.stroke_width(3)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(|e| perr(path, e))?;
        root.present().map_err(|e| perr(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_toys() {
        let n = 23;
        let mut all: Vec<usize> = (1..=4)
            .flat_map(|k| Shard::parse(&format!("{k}/4")).unwrap().indices(n))
            .collect();
        all.sort();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
        assert!(Shard::parse("0/4").is_err() && Shard::parse("5/4").is_err());
        assert!(Shard::parse("x").is_err());
    }

    #[test]
    fn percentiles_and_pvalues_follow_numpy_and_pyhf() {
        let x = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(percentile_sorted(&x, 50.0), 3.0);
        assert!((percentile_sorted(&x, 90.0) - 7.6).abs() < 1e-12);
        assert_eq!(empirical_pvalue(&x, 3.0), 0.6);
        assert_eq!(empirical_pvalue(&x, 11.0), 0.0);
        for t in [0.0, 1.0, 2.5, 3.0, 10.0, 11.0] {
            assert_eq!(tail_fraction(&x, t), empirical_pvalue(&x, t));
        }
    }
}
