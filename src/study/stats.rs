//! Per-cell statistics of the gradient estimates: Welford's running
//! mean/variance, bias and RMSE against the exact gradient, and the
//! RMSE-optimal ratio per sample size.

use serde::{Deserialize, Serialize};

/// Welford's numerically stable running mean and variance.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Welford {
    count: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one value.
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Combines two accumulators (Chan et al.), as if all values had been pushed into one.
    pub fn merge(&mut self, other: &Self) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let n = (self.count + other.count) as f64;
        let delta = other.mean - self.mean;
        self.mean += delta * other.count as f64 / n;
        self.m2 += other.m2 + delta * delta * self.count as f64 * other.count as f64 / n;
        self.count += other.count;
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean (NaN when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.mean
        }
    }

    /// Sample variance (divisor count − 1; NaN with fewer than 2 values).
    pub fn variance(&self) -> f64 {
        if self.count < 2 {
            f64::NAN
        } else {
            self.m2 / (self.count - 1) as f64
        }
    }

    /// Sample standard deviation.
    pub fn std(&self) -> f64 {
        self.variance().sqrt()
    }

    /// Standard error of the mean, std/√count.
    pub fn sem(&self) -> f64 {
        self.std() / (self.count as f64).sqrt()
    }
}

impl FromIterator<f64> for Welford {
    fn from_iter<I: IntoIterator<Item = f64>>(iter: I) -> Self {
        let mut w = Self::new();
        for x in iter {
            w.push(x);
        }
        w
    }
}

/// The summary of one (N, r) cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Sample size N.
    pub n: usize,
    /// Bandwidth-to-bin-width ratio r.
    pub ratio: f64,
    /// Bandwidth h = r × bin width.
    pub bandwidth: f64,
    /// Number of datasets.
    pub datasets: u64,
    /// Mean of dL/dθ over the datasets.
    pub mean: f64,
    /// Sample standard deviation of dL/dθ.
    pub std: f64,
    /// The exact gradient of the expected hard-histogram loss, d E[L_hard]/dθ.
    #[serde(rename = "true")]
    pub truth: f64,
    /// Uncertainty of `truth` (0 when analytic).
    pub truth_error: f64,
    /// mean − true.
    pub bias: f64,
    /// √(bias² + std²): the RMS error of a single-dataset gradient.
    pub rmse: f64,
}

impl Cell {
    /// Summarises the gradients of one cell.
    pub fn new(
        n: usize,
        ratio: f64,
        bandwidth: f64,
        acc: &Welford,
        truth: f64,
        truth_error: f64,
    ) -> Self {
        let mean = acc.mean();
        let std = acc.std();
        let bias = mean - truth;
        Self {
            n,
            ratio,
            bandwidth,
            datasets: acc.count(),
            mean,
            std,
            truth,
            truth_error,
            bias,
            rmse: bias.hypot(std),
        }
    }
}

/// The RMSE-optimal ratio for one sample size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Optimum {
    /// Sample size N.
    pub n: usize,
    /// The ratio with the smallest RMSE on the grid.
    pub ratio: f64,
    /// That RMSE.
    pub rmse: f64,
}

/// The RMSE-optimal ratio per sample size, in order of first appearance of N.
/// Cells with a non-finite RMSE are ignored.
pub fn optimal_ratios(cells: &[Cell]) -> Vec<Optimum> {
    let mut out: Vec<Optimum> = Vec::new();
    for c in cells.iter().filter(|c| c.rmse.is_finite()) {
        match out.iter_mut().find(|o| o.n == c.n) {
            Some(o) if c.rmse < o.rmse => {
                o.ratio = c.ratio;
                o.rmse = c.rmse;
            }
            Some(_) => {}
            None => out.push(Optimum {
                n: c.n,
                ratio: c.ratio,
                rmse: c.rmse,
            }),
        }
    }
    out
}
