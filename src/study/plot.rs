//! Figures of a study (plotters, SVG and PNG): the standard deviation of
//! dL/dθ vs r (one curve per N, log axes), the bias vs r, and the RMSE vs r
//! with the optimum of each N marked.
//!
//! Text is rendered with the bundled DejaVu Sans (`assets/fonts/`, plotters'
//! `ab_glyph` feature), so PNGs do not depend on the system's fonts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::output::StudyReport;
use crate::{Error, Result};

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

pub(crate) fn register_font() -> std::result::Result<(), String> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
                .map_err(|_| "the bundled DejaVuSans.ttf could not be parsed".to_string())
        })
        .clone()
}

/// Which quantity a figure shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// Standard deviation of dL/dθ (log y axis).
    Std,
    /// mean − true (linear y axis).
    Bias,
    /// √(bias² + std²) (log y axis), optimum marked.
    Rmse,
}

impl Quantity {
    fn stem(self) -> &'static str {
        match self {
            Self::Std => "std_vs_ratio",
            Self::Bias => "bias_vs_ratio",
            Self::Rmse => "rmse_vs_ratio",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Std => "std of dL/dθ",
            Self::Bias => "bias of dL/dθ (mean − true, ±1 s.e.)",
            Self::Rmse => "RMSE of dL/dθ",
        }
    }

    fn value(self, c: &super::stats::Cell) -> f64 {
        match self {
            Self::Std => c.std,
            Self::Bias => c.bias,
            Self::Rmse => c.rmse,
        }
    }
}

/// Line colours (matplotlib's tab10), shared by every figure we draw.
pub(crate) const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// A five-stop approximation of matplotlib's viridis at `t ∈ [0, 1]`
/// (clamped; non-finite values map to the low end).
pub(crate) fn viridis(t: f64) -> RGBColor {
    const S: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    RGBColor(
        mix(S[i].0, S[i + 1].0),
        mix(S[i].1, S[i + 1].1),
        mix(S[i].2, S[i + 1].2),
    )
}

/// A plotters failure as [`Error::Plot`] naming the file.
pub(crate) fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Plot {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The series of one figure: per N, the (r, value) points with finite values.
fn series(report: &StudyReport, q: Quantity) -> Vec<(usize, Vec<(f64, f64)>)> {
    let mut out: Vec<(usize, Vec<(f64, f64)>)> = Vec::new();
    for c in &report.cells {
        let v = q.value(c);
        let keep = v.is_finite() && (q == Quantity::Bias || v > 0.0);
        let idx = match out.iter().position(|(n, _)| *n == c.n) {
            Some(i) => i,
            None => {
                out.push((c.n, Vec::new()));
                out.len() - 1
            }
        };
        if keep {
            out[idx].1.push((c.ratio, v));
        }
    }
    out
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    report: &StudyReport,
    q: Quantity,
    path: &Path,
) -> Result<()> {
    let data = series(report, q);
    let xs = data.iter().flat_map(|(_, p)| p.iter().map(|p| p.0));
    let ys: Vec<f64> = data
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.1))
        .collect();
    let (xmin, xmax) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let (ymin, ymax) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
            (a.min(y), b.max(y))
        });
    if !(xmin.is_finite() && ymin.is_finite()) {
        return Err(plot_err(path, "no finite values to plot"));
    }
    let x_range = (xmin / 1.5)..(xmax * 1.5);
    let title = format!("{} vs bandwidth / bin width", q.label());
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80);

    // The two axis kinds have different coordinate types, hence two branches.
    macro_rules! finish {
        ($chart:ident) => {{
            $chart
                .configure_mesh()
                .x_desc("r = h / bin width")
                .y_desc(q.label())
                .x_label_formatter(&|v: &f64| tick(*v))
                .y_label_formatter(&|v: &f64| tick(*v))
                .label_style(("sans-serif", 15))
                .axis_desc_style(("sans-serif", 16))
                .draw()
                .map_err(|e| plot_err(path, e))?;
            for (i, (n, pts)) in data.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                $chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                    .map_err(|e| plot_err(path, e))?
                    .label(format!("N = {n}"))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                $chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(|e| plot_err(path, e))?;
                if q == Quantity::Rmse {
                    if let Some(o) = report.optima.iter().find(|o| o.n == *n) {
                        $chart
                            .draw_series(std::iter::once(Cross::new(
                                (o.ratio, o.rmse),
                                9,
                                color.stroke_width(3),
                            )))
                            .map_err(|e| plot_err(path, e))?;
                        $chart
                            .draw_series(std::iter::once(Text::new(
                                format!("r* = {}", o.ratio),
                                (o.ratio * 1.15, o.rmse * 1.04),
                                ("sans-serif", 14).into_font().color(&color),
                            )))
                            .map_err(|e| plot_err(path, e))?;
                    }
                }
            }
            if q == Quantity::Bias {
                // ±1 standard error of the mean: is the bias resolved at all?
                for (i, (n, _)) in data.iter().enumerate() {
                    let color = COLORS[i % COLORS.len()];
                    let bars = report
                        .cells
                        .iter()
                        .filter(|c| c.n == *n && c.bias.is_finite() && c.std.is_finite())
                        .map(|c| {
                            let sem = c.std / (c.datasets as f64).sqrt();
                            PathElement::new(
                                vec![(c.ratio, c.bias - sem), (c.ratio, c.bias + sem)],
                                color.stroke_width(1),
                            )
                        });
                    $chart.draw_series(bars).map_err(|e| plot_err(path, e))?;
                }
            }
            $chart
                .configure_series_labels()
                .position(match q {
                    Quantity::Std => SeriesLabelPosition::UpperRight,
                    Quantity::Bias => SeriesLabelPosition::UpperLeft,
                    Quantity::Rmse => SeriesLabelPosition::LowerRight,
                })
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 15))
                .draw()
                .map_err(|e| plot_err(path, e))?;
        }};
    }

    let (ymin, ymax) = if q == Quantity::Bias {
        report
            .cells
            .iter()
            .filter(|c| c.bias.is_finite() && c.std.is_finite())
            .map(|c| (c.bias, c.std / (c.datasets as f64).sqrt()))
            .fold((ymin, ymax), |(a, b), (y, e)| (a.min(y - e), b.max(y + e)))
    } else {
        (ymin, ymax)
    };
    if q == Quantity::Bias {
        let pad = 0.08
            * (ymax - ymin)
                .max(ymax.abs().max(ymin.abs()) * 1e-3)
                .max(1e-300);
        let mut chart = builder
            .build_cartesian_2d(x_range.log_scale(), (ymin - pad)..(ymax + pad))
            .map_err(|e| plot_err(path, e))?;
        finish!(chart);
        chart
            .draw_series(LineSeries::new(
                [(xmin / 1.5, 0.0), (xmax * 1.5, 0.0)],
                BLACK.mix(0.5).stroke_width(1),
            ))
            .map_err(|e| plot_err(path, e))?;
    } else {
        let mut chart = builder
            .build_cartesian_2d(
                x_range.log_scale(),
                ((ymin / 1.5)..(ymax * 1.5)).log_scale(),
            )
            .map_err(|e| plot_err(path, e))?;
        finish!(chart);
    }
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(())
}

/// A tick label with 3 significant digits: plotters' default prints the
/// binary value of log-scale ticks (0.6000000000000001).
fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (2 - v.abs().log10().floor() as i64).clamp(0, 17) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Draws the three figures as SVG and PNG into `dir`; returns the paths written.
pub fn write_figures(dir: &Path, report: &StudyReport) -> Result<Vec<PathBuf>> {
    register_font().map_err(|m| plot_err(dir, m))?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut written = Vec::new();
    for q in [Quantity::Std, Quantity::Bias, Quantity::Rmse] {
        let svg = dir.join(format!("{}.svg", q.stem()));
        draw(
            SVGBackend::new(&svg, (800, 560)).into_drawing_area(),
            report,
            q,
            &svg,
        )?;
        written.push(svg);
        let png = dir.join(format!("{}.png", q.stem()));
        draw(
            BitMapBackend::new(&png, (800, 560)).into_drawing_area(),
            report,
            q,
            &png,
        )?;
        written.push(png);
    }
    Ok(written)
}
