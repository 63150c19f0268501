//! Closure of the transfer-function background estimate and the F-test's
//! order selection on the binned pass/fail toy (issue 11; numbers and
//! tables in `papers/transfer/README.md`).
//!
//! 1. Closure: `--toys` background-only pseudo-datasets of the polynomial
//!    toy (16 × 6 cells, Bernstein (2, 1) pass/fail ratio); the pass region
//!    at x = 110–140 GeV (x bins 7–9, every y bin: 18 cells) is blinded; a
//!    background-only fit (POI fixed at 0) with the generating Bernstein
//!    (2, 1) TF predicts the window's background (QCD + W/Z) with its
//!    uncertainty from the fit covariance; pull = (truth − predicted)/σ_pred.
//!    The same on the non-polynomial toy (a logistic step at 110 GeV) with
//!    Bernstein TFs of orders (2, 1), (3, 1), (4, 1): the polynomial's bias.
//!    Each pseudo-dataset also draws the W/Z normsys's auxiliary datum
//!    (pyhf's `sample()`); one extra row keeps it fixed, for comparison.
//! 2. F-test: `--ftest-toys` pseudo-datasets of toys with generating
//!    Bernstein orders (1, 1), (2, 1), (2, 2); order selection from (0, 0)
//!    at α = 0.05 (max (4, 4)); the confusion table of chosen orders.
//!
//! Writes `closure.json` (summaries), `closure_toys.json` (every toy),
//! `ftest.json`, `summary.md` and the pull
//! histograms (SVG + PNG) into `--out` (default `transfer-closure/`).
//!
//! `cargo run --release --example transfer_closure [-- --toys 1000 --ftest-toys 200 --out DIR]`

use std::path::PathBuf;
use std::time::Instant;

use anagrad::toys::passfail::{PassFailToy, Tagger};
use anagrad::transfer::closure::{
    closure_toys, ftest_toys, ClosureOptions, ClosureResult, FTestStudy, FTestStudyOptions,
};
use anagrad::transfer::plot::toys_figure;
use anagrad::{Error, Result};

struct Args {
    toys: usize,
    ftest_toys: usize,
    seed: u64,
    out: PathBuf,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        toys: 1000,
        ftest_toys: 200,
        seed: 11,
        out: PathBuf::from("transfer-closure"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || {
            it.next()
                .ok_or_else(|| Error::InvalidInput(format!("{k} needs a value")))
        };
        let num = |v: String| {
            v.parse::<u64>()
                .map_err(|_| Error::InvalidInput(format!("{k}: '{v}' is not a number")))
        };
        match k.as_str() {
            "--toys" => a.toys = num(val()?)? as usize,
            "--ftest-toys" => a.ftest_toys = num(val()?)? as usize,
            "--seed" => a.seed = num(val()?)?,
            "--out" => a.out = PathBuf::from(val()?),
            _ => {
                return Err(Error::InvalidInput(format!(
                    "unknown argument '{k}' (--toys N --ftest-toys N --seed S --out DIR)"
                )))
            }
        }
    }
    Ok(a)
}

fn write_json<T: serde::Serialize>(path: &std::path::Path, v: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|source| Error::Json {
        context: path.display().to_string(),
        source,
    })?;
    std::fs::write(path, text + "\n").map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn closure_row(label: &str, order: [usize; 2], r: &ClosureResult, secs: f64) -> String {
    format!(
        "| {label} | ({}, {}) | {} | {:+.3} ± {:.3} | {:.3} ± {:.3} | {:+.3} ± {:.3} | {:.3} ± {:.3} | {:+.2} % | {:.2} % | {:.0} s |",
        order[0],
        order[1],
        r.toys.len(),
        r.pull.mean,
        r.pull.mean_err,
        r.pull.width,
        r.pull.width_err,
        r.pull_observed.mean,
        r.pull_observed.mean_err,
        r.pull_observed.width,
        r.pull_observed.width_err,
        100.0 * r.rel_bias,
        100.0 * r.rel_sigma,
        secs
    )
}

fn main() -> Result<()> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.out).map_err(|source| Error::Io {
        path: args.out.display().to_string(),
        source,
    })?;
    let window: Vec<[usize; 2]> = (7..10).flat_map(|i| (0..6).map(move |j| [i, j])).collect();
    let mut md = String::new();
    md.push_str(
        "## Closure: blinded window x = 110-140 GeV (18 pass cells), background-only fits\n\n",
    );
    md.push_str("| toy | TF order | toys | pull mean | pull width | obs. pull mean | obs. pull width | bias (pred − truth)/truth | σ_pred/truth | time |\n|---|---|---|---|---|---|---|---|---|---|\n");

    let mut closures = Vec::new();
    let cases: Vec<(&str, Tagger, [usize; 2], bool)> = vec![
        ("polynomial", Tagger::polynomial(), [2, 1], true),
        ("polynomial", Tagger::polynomial(), [2, 1], false),
        ("non-polynomial", Tagger::non_polynomial(), [2, 1], true),
        ("non-polynomial", Tagger::non_polynomial(), [3, 1], true),
        ("non-polynomial", Tagger::non_polynomial(), [4, 1], true),
    ];
    for (label, tagger, order, fluctuate_aux) in cases {
        let label: &str = if fluctuate_aux {
            label
        } else {
            "polynomial, aux fixed"
        };
        let toy = PassFailToy::new(16, 6, tagger);
        let opts = ClosureOptions {
            n_toys: args.toys,
            seed: args.seed,
            order,
            window: window.clone(),
            mu_gen: 0.0,
            fluctuate_aux,
        };
        let t0 = Instant::now();
        let r = closure_toys(&toy, &opts)?;
        let secs = t0.elapsed().as_secs_f64();
        let row = closure_row(label, order, &r, secs);
        println!("{row}");
        if !r.failed.is_empty() {
            println!(
                "  {} toys failed: {:?}",
                r.failed.len(),
                &r.failed[..r.failed.len().min(3)]
            );
        }
        md.push_str(&row);
        md.push('\n');
        let stem = format!(
            "pulls_{}_{}{}",
            label.replace(['-', ',', ' '], ""),
            order[0],
            order[1]
        );
        let pulls: Vec<f64> = r.toys.iter().map(|t| t.pull).collect();
        toys_figure(
            &args.out,
            &stem,
            &format!(
                "{label} toy, Bernstein ({}, {}) TF: window pulls (line: mean)",
                order[0], order[1]
            ),
            "(true − predicted background) / σ_pred",
            &pulls,
            r.pull.mean,
            Some(&normal_pdf),
        )?;
        closures.push((label.to_string(), order, r));
    }
    // closure.json: the summaries; closure_toys.json: every toy (large).
    write_json(&args.out.join("closure_toys.json"), &closures)?;
    for c in &mut closures {
        c.2.toys.clear();
    }
    write_json(&args.out.join("closure.json"), &closures)?;

    md.push_str("\n## F-test order selection from (0, 0), α = 0.05, max (4, 4)\n\n");
    let gens: Vec<([usize; 2], Vec<f64>)> = vec![
        ([1, 1], vec![0.030, 0.045, 0.060, 0.080]),
        (
            [2, 1],
            match Tagger::polynomial() {
                Tagger::Polynomial { coefficients, .. } => coefficients,
                _ => unreachable!(),
            },
        ),
        (
            [2, 2],
            vec![
                0.030, 0.050, 0.030, 0.060, 0.040, 0.080, 0.050, 0.070, 0.040,
            ],
        ),
    ];
    let mut studies: Vec<FTestStudy> = Vec::new();
    for (order, coefficients) in gens {
        let toy = PassFailToy::new(
            16,
            6,
            Tagger::Polynomial {
                order,
                coefficients,
            },
        );
        let opts = FTestStudyOptions {
            n_toys: args.ftest_toys,
            seed: args.seed + 1,
            start: [0, 0],
            max: [4, 4],
            alpha: 0.05,
            window: window.clone(),
        };
        let t0 = Instant::now();
        let s = ftest_toys(&toy, &opts)?;
        println!(
            "F-test, generating {:?}: {:.1} % correct of {} ({} failed), {:?}, {:.0} s",
            order,
            100.0 * s.fraction_correct,
            s.chosen.len(),
            s.failed.len(),
            s.counts,
            t0.elapsed().as_secs_f64()
        );
        studies.push(s);
    }
    let mut cols: Vec<[usize; 2]> = studies
        .iter()
        .flat_map(|s| s.counts.iter().map(|c| c.0))
        .collect();
    cols.sort();
    cols.dedup();
    md.push_str("| generating \\ chosen |");
    for c in &cols {
        md.push_str(&format!(" ({}, {}) |", c[0], c[1]));
    }
    md.push_str(" toys | correct |\n|---|");
    md.push_str(&"---|".repeat(cols.len() + 2));
    md.push('\n');
    for s in &studies {
        md.push_str(&format!("| ({}, {}) |", s.generating[0], s.generating[1]));
        for c in &cols {
            let k = s.counts.iter().find(|x| x.0 == *c).map_or(0, |x| x.1);
            md.push_str(&format!(" {k} |"));
        }
        md.push_str(&format!(
            " {} | {:.1} % |\n",
            s.chosen.len(),
            100.0 * s.fraction_correct
        ));
    }
    write_json(&args.out.join("ftest.json"), &studies)?;
    std::fs::write(args.out.join("summary.md"), &md).map_err(|source| Error::Io {
        path: args.out.display().to_string(),
        source,
    })?;
    println!("{md}");
    println!("output folder: {}", args.out.display());
    Ok(())
}
