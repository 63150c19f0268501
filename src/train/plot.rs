//! Figures of a training run (plotters, SVG and PNG): metric curves per step,
//! the hard-histogram yields per process at the best step, the network's
//! output over the 2-D feature plane with the bin boundaries, and the
//! comparison of objectives.
//!
//! Text uses the bundled DejaVu Sans registered by the bandwidth study's
//! plotting module (`crate::study::plot`), so PNGs do not depend on the
//! system's fonts.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::trainer::{StepRecord, TestMetrics};
use crate::study::plot::{plot_err as perr, register_font, viridis, COLORS};
use crate::{Error, Result};

macro_rules! draw_both {
    ($dir:expr, $stem:expr, $size:expr, $draw:ident $(, $arg:expr)*) => {{
        register_font().map_err(|m| perr($dir, m))?;
        let svg = $dir.join(format!("{}.svg", $stem));
        $draw(SVGBackend::new(&svg, $size).into_drawing_area(), &svg $(, $arg)*)?;
        let png = $dir.join(format!("{}.png", $stem));
        $draw(BitMapBackend::new(&png, $size).into_drawing_area(), &png $(, $arg)*)?;
        Ok::<Vec<PathBuf>, Error>(vec![svg, png])
    }};
}

/// A series of (step, value) with finite (and, for log axes, positive) values.
fn series(
    records: &[StepRecord],
    f: impl Fn(&TestMetrics) -> Option<f64>,
    log: bool,
) -> Vec<(f64, f64)> {
    records
        .iter()
        .filter_map(|r| {
            let v = f(r.test.as_ref()?)?;
            (v.is_finite() && (!log || v > 0.0)).then_some((r.step as f64, v))
        })
        .collect()
}

fn range(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
}

/// One line panel: `curves` of (label, points); log or linear y.
fn line_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    path: &Path,
    title: &str,
    curves: &[(String, Vec<(f64, f64)>)],
    log: bool,
) -> Result<()> {
    let xs = range(curves.iter().flat_map(|c| c.1.iter().map(|p| p.0)));
    let ys = range(curves.iter().flat_map(|c| c.1.iter().map(|p| p.1)));
    let (Some((x0, x1)), Some((y0, y1))) = (xs, ys) else {
        area.titled(&format!("{title}: no finite values"), ("sans-serif", 16))
            .map_err(|e| perr(path, e))?;
        return Ok(());
    };
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let mut b = ChartBuilder::on(area);
    b.caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70);
    macro_rules! finish {
        ($chart:ident, $fmt:expr) => {{
            $chart
                .configure_mesh()
                .x_desc("step")
                .y_label_formatter(&$fmt)
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 14))
                .draw()
                .map_err(|e| perr(path, e))?;
            for (i, (label, pts)) in curves.iter().enumerate() {
                let c = COLORS[i % COLORS.len()];
                $chart
                    .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
                    .map_err(|e| perr(path, e))?
                    .label(label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
                $chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 2, c.filled())))
                    .map_err(|e| perr(path, e))?;
            }
            if curves.len() > 1 || !curves[0].0.is_empty() {
                $chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .label_font(("sans-serif", 13))
                    .draw()
                    .map_err(|e| perr(path, e))?;
            }
        }};
    }
    if log {
        let (lo, hi) = if y1 > y0 {
            (y0 / 1.3, y1 * 1.3)
        } else {
            (y0 / 2.0, y0 * 2.0)
        };
        let mut chart = b
            .build_cartesian_2d(x0..x1, (lo..hi).log_scale())
            .map_err(|e| perr(path, e))?;
        finish!(chart, |v: &f64| format!("{v:.0e}"));
    } else {
        let pad = if y1 > y0 {
            0.08 * (y1 - y0)
        } else {
            0.1 * y0.abs().max(1e-12)
        };
        let mut chart = b
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(|e| perr(path, e))?;
        finish!(chart, |v: &f64| format!("{v:.3}"));
    }
    Ok(())
}

fn draw_metrics<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    path: &Path,
    records: &[StepRecord],
    loss_name: &str,
) -> Result<()> {
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let panels = root.split_evenly((2, 2));
    let loss: Vec<(f64, f64)> = records.iter().map(|r| (r.step as f64, r.loss)).collect();
    let log_loss = loss.iter().all(|p| p.1 > 0.0);
    line_panel(
        &panels[0],
        path,
        &format!("training loss ({loss_name}, bKDE)"),
        &[(String::new(), loss)],
        log_loss,
    )?;
    line_panel(
        &panels[1],
        path,
        "test CLs (hard histograms)",
        &[(String::new(), series(records, |t| t.cls, true))],
        true,
    )?;
    line_panel(
        &panels[2],
        path,
        "test discovery significance Z0",
        &[(String::new(), series(records, |t| t.z0, false))],
        false,
    )?;
    line_panel(
        &panels[3],
        path,
        "test σ_μ",
        &[(String::new(), series(records, |t| t.sigma_mu, false))],
        false,
    )?;
    root.present().map_err(|e| perr(path, e))
}

fn draw_yields<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    path: &Path,
    m: &TestMetrics,
    names: &[String],
    title: &str,
) -> Result<()> {
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let e = &m.edges;
    let ymax = m
        .yields
        .iter()
        .flatten()
        .fold(0.0f64, |a, &v| a.max(v))
        .max(1e-3);
    let (x0, x1) = (e[0], e[e.len() - 1]);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, 0.0..ymax * 1.15)
        .map_err(|er| perr(path, er))?;
    chart
        .configure_mesh()
        .x_desc("summary statistic (bin edges as trained)")
        .y_desc("expected yield")
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(|er| perr(path, er))?;
    for (i, row) in m.yields.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let mut pts = Vec::with_capacity(2 * row.len() + 2);
        pts.push((e[0], 0.0));
        for (b, &v) in row.iter().enumerate() {
            pts.push((e[b], v));
            pts.push((e[b + 1], v));
        }
        pts.push((e[e.len() - 1], 0.0));
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .map_err(|er| perr(path, er))?
            .label(names.get(i).cloned().unwrap_or_default())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|er| perr(path, er))?;
    root.present().map_err(|er| perr(path, er))
}

/// Data for the contour figure.
pub struct ContourData<'a> {
    /// x range, y range.
    pub x: (f64, f64),
    /// y range.
    pub y: (f64, f64),
    /// Grid size.
    pub n: usize,
    /// Network output per grid cell (row-major, y then x).
    pub values: &'a [f64],
    /// Bin edges in the output's units (cells are split into bins by them).
    pub edges: &'a [f64],
    /// Per process, a few test points (x, y) to overlay.
    pub points: &'a [Vec<(f64, f64)>],
    /// Process names.
    pub names: &'a [String],
    /// Title.
    pub title: &'a str,
}

fn draw_contours<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    path: &Path,
    d: &ContourData,
) -> Result<()> {
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(d.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(d.x.0..d.x.1, d.y.0..d.y.1)
        .map_err(|e| perr(path, e))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("x₁")
        .y_desc("x₂")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| perr(path, e))?;
    let n = d.n;
    let (lo, hi) = (d.edges[0], d.edges[d.edges.len() - 1]);
    let dx = (d.x.1 - d.x.0) / n as f64;
    let dy = (d.y.1 - d.y.0) / n as f64;
    let bin = |v: f64| {
        d.edges[1..d.edges.len() - 1]
            .iter()
            .filter(|&&e| v >= e)
            .count()
    };
    let cells = (0..n * n).map(|k| {
        let (i, j) = (k % n, k / n);
        let v = d.values[k];
        let x = d.x.0 + i as f64 * dx;
        let y = d.y.0 + j as f64 * dy;
        Rectangle::new(
            [(x, y), (x + dx, y + dy)],
            viridis((v - lo) / (hi - lo)).filled(),
        )
    });
    chart.draw_series(cells).map_err(|e| perr(path, e))?;
    // bin boundaries: cells whose bin differs from the right or upper neighbour
    let mut bounds = Vec::new();
    for j in 0..n {
        for i in 0..n {
            let b = bin(d.values[j * n + i]);
            let right = i + 1 < n && bin(d.values[j * n + i + 1]) != b;
            let up = j + 1 < n && bin(d.values[(j + 1) * n + i]) != b;
            if right || up {
                let x = d.x.0 + (i as f64 + 0.5) * dx;
                let y = d.y.0 + (j as f64 + 0.5) * dy;
                bounds.push(Rectangle::new([(x, y), (x + dx, y + dy)], BLACK.filled()));
            }
        }
    }
    chart.draw_series(bounds).map_err(|e| perr(path, e))?;
    let marks = [RED, WHITE, MAGENTA, CYAN];
    for (p, pts) in d.points.iter().enumerate() {
        let c = marks[p % marks.len()];
        chart
            .draw_series(pts.iter().map(|&q| Circle::new(q, 2, c.stroke_width(1))))
            .map_err(|e| perr(path, e))?
            .label(d.names.get(p).cloned().unwrap_or_default())
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| perr(path, e))?;
    root.present().map_err(|e| perr(path, e))
}

fn draw_compare<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    path: &Path,
    curves: &[(String, Vec<(f64, f64)>)],
    title: &str,
) -> Result<()> {
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    line_panel(&root, path, title, curves, true)?;
    root.present().map_err(|e| perr(path, e))
}

/// `metrics.svg/png`: training loss and test CLs, Z0, σ_μ per step.
pub fn metrics_figure(dir: &Path, records: &[StepRecord], loss_name: &str) -> Result<Vec<PathBuf>> {
    draw_both!(
        dir,
        "metrics",
        (1100, 800),
        draw_metrics,
        records,
        loss_name
    )
}

/// `yields.svg/png`: hard-histogram yields per process.
pub fn yields_figure(
    dir: &Path,
    m: &TestMetrics,
    names: &[String],
    title: &str,
) -> Result<Vec<PathBuf>> {
    draw_both!(dir, "yields", (800, 560), draw_yields, m, names, title)
}

/// `contours.svg/png`: network output over the plane, bin boundaries, data.
pub fn contour_figure(dir: &Path, d: &ContourData) -> Result<Vec<PathBuf>> {
    draw_both!(dir, "contours", (760, 700), draw_contours, d)
}

/// `<stem>.svg/png`: one log-y curve per label (e.g. test CLs per objective).
pub fn compare_figure(
    dir: &Path,
    stem: &str,
    curves: &[(String, Vec<(f64, f64)>)],
    title: &str,
) -> Result<Vec<PathBuf>> {
    draw_both!(dir, stem, (900, 600), draw_compare, curves, title)
}
