//! A complete small transfer-function fit: the polynomial pass/fail toy →
//! Poisson pseudo-data → a config (Bernstein (2, 1) TF, the W/Z-like
//! background with a 10 % normsys, the signal with its POI, a blinded
//! signal window) → the fit → the fitted TF against the truth and the pulls.
//!
//! `cargo run --release --example transfer_fit`

use anagrad::toys::passfail::{PassFailToy, Tagger};
use anagrad::transfer::{fit_config, TransferConfig, TransferFitOptions};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn main() -> anagrad::Result<()> {
    let toy = PassFailToy::new(16, 6, Tagger::polynomial());
    let expected = toy.expected()?;
    let data = toy.pseudo_data(&expected, 1.0, &mut StdRng::seed_from_u64(1))?;
    let mut cfg = TransferConfig::from_toy(&toy, &expected, &data, [2, 1]);
    // Blind the pass region around the signal mass (x bins 7-9: 110-140 GeV) at low pT.
    cfg.blinded = (7..10).map(|i| vec![i, 0]).collect();
    let fit = fit_config(&cfg, &TransferFitOptions::default())?;
    let report = fit.report()?;
    println!(
        "fit: {} parameters, -2lnL = {:.3}, saturated chi2 = {:.2} over {} bins, {:.3} s",
        report.n_pars, report.twice_nll, report.saturated, report.n_bins, report.fit_time_s
    );
    let truth = match &toy.tagger {
        Tagger::Polynomial { coefficients, .. } => coefficients.clone(),
        _ => unreachable!(),
    };
    println!("TF coefficients (Bernstein (2, 1)):");
    for (k, (p, t)) in report.tf.parts[0].parameters.iter().zip(&truth).enumerate() {
        println!(
            "  tf[{k}] = {:.5} ± {:.5}   (true {t:.5}, pull {:+.2})",
            p.value,
            p.unc,
            (p.value - t) / p.unc
        );
    }
    println!("pulls of constrained parameters and the POI:");
    for p in &report.parameters {
        if let Some(c) = &p.constraint {
            println!(
                "  {:<10} {:+.3} ± {:.3} (pull {:+.2})",
                p.name, p.value, p.unc, c.pull_prefit
            );
        } else if Some(&p.name) == report.poi.as_ref() {
            println!("  {:<10} {:.3} ± {:.3} (true 1)", p.name, p.value, p.unc);
        }
    }
    Ok(())
}
