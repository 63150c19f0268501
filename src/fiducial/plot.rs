//! The figure of a fiducial-cuts run (SVG and PNG): two projections, (φ, m)
//! and (φ, Δy), coloured by the log of the signal/background ratio of the
//! toy's two-dimensional marginal densities (the optimal selection is where
//! it is high), with the boxes of every cluster's optimum (colours; empty
//! boxes are not drawn), the committee union (black) and the grid-search
//! single box (red, dashed).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::run::FiducialReport;
use super::selection::CutBox;
use crate::study::plot::{plot_err, register_font, viridis, COLORS};
use crate::toys::Fiducial;
use crate::{Error, Result};

/// Axis index and label of the two panels' vertical observables.
const PANELS: [(usize, &str); 2] = [(0, "m"), (2, "Δy")];

fn clip(v: f64, lo: f64, hi: f64) -> f64 {
    v.clamp(lo, hi)
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    report: &FiducialReport,
    toy: &Fiducial,
    path: &Path,
) -> Result<()> {
    let e = |e| plot_err(path, e);
    root.fill(&WHITE).map_err(e)?;
    let ranges = {
        use crate::toys::ToyModel;
        toy.feature_range()
    };
    let (px_lo, px_hi) = ranges[1];
    for (area, (j, label)) in root.split_evenly((1, 2)).iter().zip(PANELS) {
        let (y_lo, y_hi) = ranges[j];
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("log(f_s / f_b) in (φ, {label}); boxes of the optima"),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(px_lo..px_hi, y_lo..y_hi)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("φ")
            .y_desc(label)
            .disable_mesh()
            .draw()
            .map_err(e)?;
        let (nx, ny) = (120, 90);
        let (dx, dy) = ((px_hi - px_lo) / nx as f64, (y_hi - y_lo) / ny as f64);
        let ratio = |x: f64, y: f64| {
            let s = toy.marginal(true, 1, x) * toy.marginal(true, j, y);
            let b = toy.marginal(false, 1, x) * toy.marginal(false, j, y);
            (s / b).ln()
        };
        // colour scale: log ratio from −4 to +4
        chart
            .draw_series((0..nx).flat_map(|a| {
                (0..ny).map(move |c| {
                    let (x, y) = (px_lo + a as f64 * dx, y_lo + c as f64 * dy);
                    let t = (ratio(x + 0.5 * dx, y + 0.5 * dy) + 4.0) / 8.0;
                    Rectangle::new([(x, y), (x + dx, y + dy)], viridis(t).filled())
                })
            }))
            .map_err(e)?;
        let rect = |b: &CutBox| {
            [
                (clip(b.lo[1], px_lo, px_hi), clip(b.lo[j], y_lo, y_hi)),
                (clip(b.hi[1], px_lo, px_hi), clip(b.hi[j], y_lo, y_hi)),
            ]
        };
        chart
            .draw_series(
                report
                    .committee
                    .boxes
                    .iter()
                    .map(|b| Rectangle::new(rect(b), BLACK.stroke_width(3))),
            )
            .map_err(e)?
            .label("committee union")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], BLACK.stroke_width(3)));
        for (k, c) in report.clusters.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            // an optimum that collapsed to an empty box (lo ≥ hi) has nothing to draw
            let boxes = report.members[c.representative]
                .boxes
                .iter()
                .filter(|b| b.lo.iter().zip(&b.hi).all(|(l, h)| l < h));
            chart
                .draw_series(boxes.map(|b| Rectangle::new(rect(b), color.stroke_width(2))))
                .map_err(e)?
                .label(format!("cluster {k} ({} members)", c.members.len()))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.stroke_width(2))
                });
        }
        let [(x0, y0), (x1, y1)] = rect(&report.grid_train.search.best);
        chart
            .draw_series(DashedLineSeries::new(
                [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)],
                6,
                4,
                RED.stroke_width(2),
            ))
            .map_err(e)?
            .label("grid best single box")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], RED.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.7))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}

/// Writes `regions.svg` and `regions.png` into `dir`.
pub fn write_figure(dir: &Path, report: &FiducialReport) -> Result<Vec<PathBuf>> {
    register_font().map_err(|m| plot_err(dir, m))?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let toy = report.config.toy();
    let svg = dir.join("regions.svg");
    draw(
        SVGBackend::new(&svg, (1200, 520)).into_drawing_area(),
        report,
        &toy,
        &svg,
    )?;
    let png = dir.join("regions.png");
    draw(
        BitMapBackend::new(&png, (1200, 520)).into_drawing_area(),
        report,
        &toy,
        &png,
    )?;
    Ok(vec![svg, png])
}
