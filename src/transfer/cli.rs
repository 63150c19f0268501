//! `anagrad transfer fit|gof|ftest|toy`: the transfer-function workflow on
//! a config file; each command writes JSON and figures into an output
//! folder and prints it (`toy` writes a toy config to try the others on).

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

use super::config::{build, TransferConfig};
use super::ftest::{fit_order, ftest_fits, select_order, FTestResult};
use super::gof::gof_toys;
use super::plot::{fit_figures, toys_figure};
use super::report::{fit_built, TransferFitOptions};
use crate::toys::passfail::{PassFailToy, Tagger};
use crate::{Error, Result};

/// Arguments of `anagrad transfer`.
#[derive(Debug, Clone, clap::Args)]
pub struct TransferArgs {
    /// What to run.
    #[command(subcommand)]
    pub command: TransferCommand,
}

/// The `anagrad transfer` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TransferCommand {
    /// Fit a pass/fail config: fit.json (best fit, post-fit yields, TF
    /// surface, pulls, projections), workspace.json and figures.
    Fit(FitCmd),
    /// Saturated goodness of fit with toys from the best fit: gof.json and gof.svg/png.
    Gof(GofCmd),
    /// Fisher F-tests between TF orders (or an order selection): ftest.json (+ toy figures).
    Ftest(FtestCmd),
    /// Write a toy config (the binned pass/fail toy with Poisson pseudo-data).
    Toy(ToyCmd),
}

/// Options shared by the commands that fit a config.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Transfer config (JSON, or TOML with a .toml extension).
    pub config: PathBuf,
    /// Output folder.
    #[arg(long, short = 'o')]
    pub output_dir: Option<PathBuf>,
    /// Fix the POI at this value (e.g. 0: background-only fit).
    #[arg(long, allow_negative_numbers = true)]
    pub fix_poi: Option<f64>,
    /// Skip the SVG/PNG figures.
    #[arg(long)]
    pub no_plots: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `anagrad transfer fit`.
#[derive(Debug, Clone, clap::Args)]
pub struct FitCmd {
    #[command(flatten)]
    pub common: Common,
}

/// `anagrad transfer gof`.
#[derive(Debug, Clone, clap::Args)]
pub struct GofCmd {
    #[command(flatten)]
    pub common: Common,
    /// Number of toys.
    #[arg(long, default_value_t = 500)]
    pub ntoys: usize,
    /// Master seed (toy i uses its own stream of this seed).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `anagrad transfer ftest`.
#[derive(Debug, Clone, clap::Args)]
pub struct FtestCmd {
    #[command(flatten)]
    pub common: Common,
    /// Orders to compare, increasing: `1,1:2,1:2,2` tests (1,1) vs (2,1) and (2,1) vs (2,2).
    /// With `--select`: the starting order (first entry) of the selection.
    #[arg(long, default_value = "0,0:1,1")]
    pub orders: String,
    /// Select the order instead: raise it one axis at a time while the
    /// F-test p-value < `--alpha`, up to `--max`.
    #[arg(long)]
    pub select: bool,
    /// Highest order per axis for `--select`.
    #[arg(long, default_value = "4,4")]
    pub max: String,
    /// Significance level of `--select`.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Toys of the lower-order fit for a toy-based p-value (0: none).
    #[arg(long, default_value_t = 0)]
    pub ntoys: usize,
    /// Master seed of the toys.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `anagrad transfer toy`.
#[derive(Debug, Clone, clap::Args)]
pub struct ToyCmd {
    /// Tagger: `polynomial` (Bernstein (2, 1) pass/fail ratio) or `nonpolynomial` (a step in x).
    #[arg(long, default_value = "polynomial", value_parser = ["polynomial", "nonpolynomial"])]
    pub variant: String,
    /// Seed of the pseudo-data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Bins in x (40–200 GeV).
    #[arg(long, default_value_t = 16)]
    pub nx: usize,
    /// Bins in y (450–1200 GeV).
    #[arg(long, default_value_t = 6)]
    pub ny: usize,
    /// TF order written into the config, `ox,oy`.
    #[arg(long, default_value = "2,1")]
    pub order: String,
    /// Signal strength of the pseudo-data.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub mu: f64,
    /// Blind the pass region at x = 110–140 GeV (all y).
    #[arg(long)]
    pub blind: bool,
    /// Where to write the config.
    #[arg(long, default_value = "transfer-toy.json")]
    pub out: PathBuf,
}

fn parse_order(s: &str, key: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(|t| {
            t.trim().parse::<usize>().map_err(|_| Error::Config {
                key: key.into(),
                message: format!("'{s}' is not a comma-separated list of orders"),
            })
        })
        .collect()
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<PathBuf> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|source| Error::Io {
            path: d.display().to_string(),
            source,
        })?;
    }
    let text = serde_json::to_string_pretty(v).map_err(|source| Error::Json {
        context: path.display().to_string(),
        source,
    })?;
    std::fs::write(path, text + "\n").map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(path.to_path_buf())
}

fn bar(n: usize, quiet: bool, what: &str) -> ProgressBar {
    crate::progress::bar(n as u64, quiet, what)
}

fn options(c: &Common) -> TransferFitOptions {
    TransferFitOptions {
        fix_poi: c.fix_poi,
        ..Default::default()
    }
}

fn finish(out: &Path, written: Vec<PathBuf>) {
    println!("output folder: {}", out.display());
    for p in written {
        println!("  {}", p.display());
    }
}

fn run_fit(a: &FitCmd) -> Result<()> {
    let c = &a.common;
    let cfg = TransferConfig::from_path(&c.config)?;
    let out = c
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("transfer-fit"));
    let t0 = Instant::now();
    let built = build(&cfg)?;
    let fit = fit_built(built, &options(c))?;
    let report = fit.report()?;
    println!(
        "fit converged: {} free parameters, -2lnL = {:.4}, saturated chi2 = {:.3} over {} unblinded bins; fit {:.3} s, total {:.3} s",
        report.n_pars,
        report.twice_nll,
        report.saturated,
        report.n_bins,
        report.fit_time_s,
        t0.elapsed().as_secs_f64()
    );
    for part in &report.tf.parts {
        let v: Vec<String> = part
            .parameters
            .iter()
            .map(|p| format!("{:.4}±{:.4}", p.value, p.unc))
            .collect();
        println!(
            "{} ({} {:?} {}): {}",
            part.name,
            part.basis,
            part.order,
            part.form,
            v.join(" ")
        );
    }
    if let Some(poi) = &report.poi {
        if let Some(p) = report.parameters.iter().find(|p| &p.name == poi) {
            println!("{poi} = {:.4} ± {:.4}", p.value, p.unc);
        }
    }
    let mut written = vec![
        write_json(&out.join("fit.json"), &report)?,
        write_json(&out.join("workspace.json"), &fit.built.workspace.to_value())?,
    ];
    if !c.no_plots {
        written.extend(fit_figures(&out, &report)?);
    }
    finish(&out, written);
    Ok(())
}

fn run_gof(a: &GofCmd) -> Result<()> {
    let c = &a.common;
    let cfg = TransferConfig::from_path(&c.config)?;
    let out = c
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("transfer-gof"));
    let opts = options(c);
    let fit = fit_built(build(&cfg)?, &opts)?;
    let b = bar(a.ntoys, c.quiet, "toys");
    let t0 = Instant::now();
    let g = gof_toys(
        &fit.model,
        &fit.result,
        &fit.data,
        a.ntoys,
        a.seed,
        &opts.fit,
        &b,
    )?;
    b.finish_and_clear();
    println!(
        "saturated GoF: observed {:.3} ({} bins, {} parameters), p-value {:.4} from {} toys ({} failed) in {:.2} s",
        g.observed,
        g.n_bins,
        g.n_pars,
        g.p_value,
        g.toys.len(),
        g.failed,
        t0.elapsed().as_secs_f64()
    );
    let mut written = vec![write_json(&out.join("gof.json"), &g)?];
    if !c.no_plots {
        written.extend(toys_figure(
            &out,
            "gof",
            &format!("saturated GoF: p = {:.3}", g.p_value),
            "saturated statistic",
            &g.toys,
            g.observed,
            None,
        )?);
    }
    finish(&out, written);
    Ok(())
}

fn run_ftest(a: &FtestCmd) -> Result<()> {
    let c = &a.common;
    let cfg = TransferConfig::from_path(&c.config)?;
    let out = c
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("transfer-ftest"));
    let opts = options(c);
    let orders: Vec<Vec<usize>> = a
        .orders
        .split(':')
        .map(|s| parse_order(s, "--orders"))
        .collect::<Result<_>>()?;
    let mut written = Vec::new();
    if a.select {
        let max = parse_order(&a.max, "--max")?;
        let sel = select_order(&cfg, &orders[0], &max, a.alpha, &opts)?;
        for t in &sel.tests {
            print_test(t);
        }
        println!("selected order {:?} (alpha {})", sel.chosen, sel.alpha);
        written.push(write_json(&out.join("ftest.json"), &sel)?);
    } else {
        if orders.len() < 2 {
            return Err(Error::Config {
                key: "--orders".into(),
                message: "give at least two orders, e.g. 1,1:2,1".into(),
            });
        }
        let fits = orders
            .iter()
            .map(|o| fit_order(&cfg, o, &opts))
            .collect::<Result<Vec<_>>>()?;
        let mut tests: Vec<FTestResult> = Vec::new();
        for k in 1..fits.len() {
            let b = bar(a.ntoys, c.quiet || a.ntoys == 0, "toys");
            let toys = (a.ntoys > 0).then_some((a.ntoys, a.seed));
            let t = ftest_fits(&fits[k - 1], &fits[k], toys, &opts, &b)?;
            b.finish_and_clear();
            print_test(&t);
            if let (Some(tt), false) = (&t.toys, c.no_plots) {
                let d1 = (t.p2 - t.p1) as f64;
                let d2 = (t.n - t.p2) as f64;
                let dist = statrs::distribution::FisherSnedecor::new(d1, d2).ok();
                let dens = move |x: f64| {
                    use statrs::distribution::Continuous;
                    dist.as_ref()
                        .map_or(0.0, |d| if x > 0.0 { d.pdf(x) } else { 0.0 })
                };
                let stem = format!("ftest_{}_vs_{}", join(&t.order1), join(&t.order2));
                written.extend(toys_figure(
                    &out,
                    &stem,
                    &format!(
                        "F-test {:?} vs {:?}: p = {:.3} (toys), {:.3} (F dist.)",
                        t.order1, t.order2, tt.p_value, t.p_value
                    ),
                    "F",
                    &tt.f,
                    t.f,
                    Some(&dens),
                )?);
            }
            tests.push(t);
        }
        written.insert(0, write_json(&out.join("ftest.json"), &tests)?);
    }
    finish(&out, written);
    Ok(())
}

fn join(o: &[usize]) -> String {
    o.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("")
}

fn print_test(t: &FTestResult) {
    let toys = t.toys.as_ref().map_or(String::new(), |tt| {
        format!(", toys p = {:.4} ({} toys)", tt.p_value, tt.f.len())
    });
    println!(
        "F-test {:?} vs {:?}: chi2 {:.3} -> {:.3}, p {} -> {}, n {}: F = {:.4}, p = {:.4}{toys}",
        t.order1, t.order2, t.chi2_1, t.chi2_2, t.p1, t.p2, t.n, t.f, t.p_value
    );
}

fn run_toy(a: &ToyCmd) -> Result<()> {
    let tagger = match a.variant.as_str() {
        "polynomial" => Tagger::polynomial(),
        _ => Tagger::non_polynomial(),
    };
    if a.nx < 2 || a.ny < 1 {
        return Err(Error::Config {
            key: "--nx/--ny".into(),
            message: "need nx ≥ 2 and ny ≥ 1".into(),
        });
    }
    let order = parse_order(&a.order, "--order")?;
    if order.len() != 2 {
        return Err(Error::Config {
            key: "--order".into(),
            message: "give two orders, ox,oy".into(),
        });
    }
    let toy = PassFailToy::new(a.nx, a.ny, tagger);
    let expected = toy.expected()?;
    let data = toy.pseudo_data(&expected, a.mu, &mut StdRng::seed_from_u64(a.seed))?;
    let mut cfg = TransferConfig::from_toy(&toy, &expected, &data, [order[0], order[1]]);
    if a.blind {
        let xc = toy.x_centres();
        for (i, &x) in xc.iter().enumerate() {
            if (110.0..=140.0).contains(&x) {
                for j in 0..a.ny {
                    cfg.blinded.push(vec![i, j]);
                }
            }
        }
    }
    cfg.validate()?;
    write_json(&a.out, &cfg)?;
    println!(
        "toy config ({} tagger, seed {}): {}",
        a.variant,
        a.seed,
        a.out.display()
    );
    Ok(())
}

/// Runs `anagrad transfer …`.
pub fn run(args: &TransferArgs) -> Result<()> {
    match &args.command {
        TransferCommand::Fit(a) => run_fit(a),
        TransferCommand::Gof(a) => run_gof(a),
        TransferCommand::Ftest(a) => run_ftest(a),
        TransferCommand::Toy(a) => run_toy(a),
    }
}
