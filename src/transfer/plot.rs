//! Figures of the transfer-function workflow (plotters, SVG and PNG): the TF
//! surface as a heat map (a line with its band in 1-D), 1-D slices of the
//! TF with ±1σ bands, post-fit projections data vs stacked prediction per
//! region and axis, pulls of the constrained parameters, and toy
//! distributions (GoF, F-test) with the observed value.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::report::{FitReport, Projection, TfSlice};
use crate::study::plot::{plot_err as perr, register_font, viridis, COLORS};
use crate::{Error, Result};

macro_rules! draw_both {
    ($dir:expr, $stem:expr, $size:expr, $draw:ident $(, $arg:expr)*) => {{
        register_font().map_err(|m| perr($dir, m))?;
        std::fs::create_dir_all($dir).map_err(|source| Error::Io {
            path: $dir.display().to_string(),
            source,
        })?;
        let svg = $dir.join(format!("{}.svg", $stem));
        $draw(SVGBackend::new(&svg, $size).into_drawing_area(), &svg $(, $arg)*)?;
        let png = $dir.join(format!("{}.png", $stem));
        $draw(BitMapBackend::new(&png, $size).into_drawing_area(), &png $(, $arg)*)?;
        Ok::<Vec<PathBuf>, Error>(vec![svg, png])
    }};
}

fn range(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = vals
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5 * lo.abs().max(1e-9), hi + 0.5 * hi.abs().max(1e-9))
    }
}

fn pad((lo, hi): (f64, f64), f: f64) -> std::ops::Range<f64> {
    let d = (hi - lo) * f;
    (lo - d)..(hi + d)
}

/// A line with its ±1σ band on `area`.
fn band_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    path: &Path,
    title: &str,
    xdesc: &str,
    curves: &[(String, Vec<[f64; 3]>)],
) -> Result<()> {
    let xr = range(curves.iter().flat_map(|(_, p)| p.iter().map(|q| q[0])));
    let yr = range(
        curves
            .iter()
            .flat_map(|(_, p)| p.iter().flat_map(|q| [q[1] - q[2], q[1] + q[2]])),
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(65)
        .build_cartesian_2d(xr.0..xr.1, pad(yr, 0.05))
        .map_err(|e| perr(path, e))?;
    chart
        .configure_mesh()
        .x_desc(xdesc)
        .y_desc("TF")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| perr(path, e))?;
    for (i, (label, pts)) in curves.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let mut poly: Vec<(f64, f64)> = pts.iter().map(|q| (q[0], q[1] + q[2])).collect();
        poly.extend(pts.iter().rev().map(|q| (q[0], q[1] - q[2])));
        chart
            .draw_series(std::iter::once(Polygon::new(poly, c.mix(0.2).filled())))
            .map_err(|e| perr(path, e))?;
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|q| (q[0], q[1])),
                c.stroke_width(2),
            ))
            .map_err(|e| perr(path, e))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    if curves.len() > 1 || !curves[0].0.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(|e| perr(path, e))?;
    }
    Ok(())
}

fn draw_tf_surface<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    path: &Path,
    r: &FitReport,
) -> Result<()> {
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let tf = &r.tf;
    if tf.grid_axes.len() == 1 {
        let pts: Vec<[f64; 3]> = tf.grid_axes[0]
            .iter()
            .zip(&tf.grid_value)
            .zip(&tf.grid_unc)
            .map(|((&x, v), u)| [x, v[0], u[0]])
            .collect();
        band_panel(
            &root,
            path,
            "fitted TF (±1σ)",
            &r.axes[0],
            &[(String::new(), pts)],
        )?;
        return root.present().map_err(|e| perr(path, e));
    }
    let (main, bar) = root.split_horizontally(root.dim_in_pixel().0 as i32 - 110);
    let (xs, ys) = (&tf.grid_axes[0], &tf.grid_axes[1]);
    let (lo, hi) = range(tf.grid_value.iter().flatten().copied());
    let mut chart = ChartBuilder::on(&main)
        .caption("fitted TF (pass/fail QCD ratio)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(xs[0]..xs[xs.len() - 1], ys[0]..ys[ys.len() - 1])
        .map_err(|e| perr(path, e))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(r.axes[0].as_str())
        .y_desc(r.axes[1].as_str())
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| perr(path, e))?;
    let dx = (xs[1] - xs[0]) * 0.5;
    let dy = (ys[1] - ys[0]) * 0.5;
    let cells = xs.iter().enumerate().flat_map(|(i, &x)| {
        ys.iter().enumerate().map(move |(j, &y)| {
            let v = tf.grid_value[i][j];
            Rectangle::new(
                [(x - dx, y - dy), (x + dx, y + dy)],
                viridis((v - lo) / (hi - lo)).filled(),
            )
        })
    });
    chart.draw_series(cells).map_err(|e| perr(path, e))?;
    // bin centres
    chart
        .draw_series(
            tf.at_bins
                .iter()
                .map(|p| Circle::new((p.coords[0], p.coords[1]), 2, WHITE.mix(0.7).filled())),
        )
        .map_err(|e| perr(path, e))?;
    // colour bar
    let mut cb = ChartBuilder::on(&bar)
        .margin_top(40)
        .margin_bottom(50)
        .margin_right(10)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(|e| perr(path, e))?;
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .label_style(("sans-serif", 12))
        .y_label_formatter(&|v: &f64| format!("{v:.4}"))
        .draw()
        .map_err(|e| perr(path, e))?;
    let n = 100;
    cb.draw_series((0..n).map(|k| {
        let a = lo + (hi - lo) * k as f64 / n as f64;
        let b = lo + (hi - lo) * (k + 1) as f64 / n as f64;
        Rectangle::new(
            [(0.0, a), (1.0, b)],
            viridis((k as f64 + 0.5) / n as f64).filled(),
        )
    }))
    .map_err(|e| perr(path, e))?;
    root.present().map_err(|e| perr(path, e))
}

fn slice_curves(slices: &[TfSlice], axis: usize, other: &str) -> Vec<(String, Vec<[f64; 3]>)> {
    slices
        .iter()
        .filter(|s| s.axis == axis)
        .map(|s| {
            let label = s.at.map_or(String::new(), |v| format!("{other} = {v:.1}"));
            (label, s.points.clone())
        })
        .collect()
}

fn draw_tf_slices<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    path: &Path,
    r: &FitReport,
) -> Result<()> {
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    if r.axes.len() == 1 {
        band_panel(
            &root,
            path,
            "TF (±1σ)",
            &r.axes[0],
            &slice_curves(&r.tf.slices, 0, ""),
        )?;
    } else {
        let (a, b) = root.split_horizontally(root.dim_in_pixel().0 as i32 / 2);
        band_panel(
            &a,
            path,
            &format!("TF vs {} (±1σ)", r.axes[0]),
            &r.axes[0],
            &slice_curves(&r.tf.slices, 0, &r.axes[1]),
        )?;
        band_panel(
            &b,
            path,
            &format!("TF vs {} (±1σ)", r.axes[1]),
            &r.axes[1],
            &slice_curves(&r.tf.slices, 1, &r.axes[0]),
        )?;
    }
    root.present().map_err(|e| perr(path, e))
}

fn projection_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    path: &Path,
    p: &Projection,
) -> Result<()> {
    let e = &p.edges;
    let nt = p.data.len();
    let ymax = (0..nt)
        .map(|t| (p.prediction[t] + p.prediction_unc[t]).max(p.data[t] + p.data[t].max(0.0).sqrt()))
        .fold(0.0, f64::max)
        .max(1e-9);
    let blinded = p.blinded_cells.iter().any(|&c| c > 0);
    let title = format!(
        "{} region: projection on {}{}",
        p.region,
        p.axis_name,
        if blinded { " (unblinded cells)" } else { "" }
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(e[0]..e[nt], 0.0..ymax * 1.15)
        .map_err(|err| perr(path, err))?;
    chart
        .configure_mesh()
        .x_desc(p.axis_name.as_str())
        .y_desc("events")
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(|err| perr(path, err))?;
    // stacked samples (the first sample, QCD, at the bottom)
    let mut base = vec![0.0; nt];
    for (k, (name, v)) in p.samples.iter().enumerate() {
        let c = COLORS[k % COLORS.len()];
        let rects: Vec<_> = (0..nt)
            .map(|t| {
                Rectangle::new(
                    [(e[t], base[t]), (e[t + 1], base[t] + v[t])],
                    c.mix(0.45).filled(),
                )
            })
            .collect();
        chart
            .draw_series(rects)
            .map_err(|err| perr(path, err))?
            .label(name.clone())
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.mix(0.45).filled())
            });
        for t in 0..nt {
            base[t] += v[t];
        }
    }
    // total ± 1σ (hatched as a translucent box)
    chart
        .draw_series((0..nt).map(|t| {
            Rectangle::new(
                [
                    (e[t], p.prediction[t] - p.prediction_unc[t]),
                    (e[t + 1], p.prediction[t] + p.prediction_unc[t]),
                ],
                BLACK.mix(0.25).filled(),
            )
        }))
        .map_err(|err| perr(path, err))?
        .label("prediction ± 1σ")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], BLACK.mix(0.25).filled()));
    // data
    let pts: Vec<(f64, f64, f64)> = (0..nt)
        .filter(|&t| p.data[t] > 0.0 || p.prediction[t] > 0.0)
        .map(|t| {
            (
                0.5 * (e[t] + e[t + 1]),
                p.data[t],
                p.data[t].max(0.0).sqrt(),
            )
        })
        .collect();
    chart
        .draw_series(pts.iter().map(|&(x, y, s)| {
            PathElement::new(vec![(x, y - s), (x, y + s)], BLACK.stroke_width(1))
        }))
        .map_err(|err| perr(path, err))?;
    chart
        .draw_series(
            pts.iter()
                .map(|&(x, y, _)| Circle::new((x, y), 3, BLACK.filled())),
        )
        .map_err(|err| perr(path, err))?
        .label("data")
        .legend(|(x, y)| Circle::new((x + 7, y), 3, BLACK.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(|err| perr(path, err))?;
    Ok(())
}

fn draw_projections<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    path: &Path,
    r: &FitReport,
) -> Result<()> {
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let na = r.axes.len();
    let nreg = r.projections.len() / na.max(1);
    let panels = root.split_evenly((na, nreg.max(1)));
    // rows: axes; columns: regions
    for (k, p) in r.projections.iter().enumerate() {
        let (reg, ax) = (k / na, k % na);
        projection_panel(&panels[ax * nreg + reg], path, p)?;
    }
    root.present().map_err(|e| perr(path, e))
}

fn draw_pulls<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    path: &Path,
    r: &FitReport,
) -> Result<()> {
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let cons: Vec<_> = r
        .parameters
        .iter()
        .filter_map(|p| p.constraint.as_ref().map(|c| (p, c)))
        .collect();
    let free: Vec<String> = r
        .parameters
        .iter()
        .filter(|p| {
            p.constraint.is_none()
                && !p.fixed
                && (Some(&p.name) == r.poi.as_ref()
                    || r.tf
                        .parts
                        .iter()
                        .any(|t| p.name.starts_with(&format!("{}[", t.name))))
        })
        .map(|p| format!("{} = {:.4} ± {:.4}", p.name, p.value, p.unc))
        .collect();
    let (left, right) = root.split_horizontally(root.dim_in_pixel().0 as i32 * 3 / 5);
    let n = cons.len().max(1);
    let lim = cons
        .iter()
        .map(|(_, c)| c.pull_prefit.abs() + c.constraint)
        .fold(2.5f64, f64::max);
    let mut chart = ChartBuilder::on(&left)
        .caption(
            "pulls: (fit − aux)/σ_prefit, bars σ_postfit/σ_prefit",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(110)
        .build_cartesian_2d(-lim..lim, -0.5..(n as f64 - 0.5))
        .map_err(|e| perr(path, e))?;
    let names: Vec<String> = cons.iter().map(|(p, _)| p.name.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v: &f64| {
            let k = v.round();
            if (v - k).abs() < 1e-6 && k >= 0.0 {
                names.get(k as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(|e| perr(path, e))?;
    for (w, c) in [
        (2.0, RGBColor(255, 235, 130)),
        (1.0, RGBColor(130, 210, 130)),
    ] {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(-w, -0.5), (w, n as f64 - 0.5)],
                c.mix(0.6).filled(),
            )))
            .map_err(|e| perr(path, e))?;
    }
    for (k, (_, c)) in cons.iter().enumerate() {
        let y = k as f64;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![
                    (c.pull_prefit - c.constraint, y),
                    (c.pull_prefit + c.constraint, y),
                ],
                BLACK.stroke_width(2),
            )))
            .map_err(|e| perr(path, e))?;
        chart
            .draw_series(std::iter::once(Circle::new(
                (c.pull_prefit, y),
                4,
                BLACK.filled(),
            )))
            .map_err(|e| perr(path, e))?;
    }
    let style = ("sans-serif", 13).into_font();
    right
        .draw(&Text::new(
            "free parameters (value ± σ̂):",
            (10, 20),
            style.clone(),
        ))
        .map_err(|e| perr(path, e))?;
    for (k, s) in free.iter().take(40).enumerate() {
        right
            .draw(&Text::new(
                s.clone(),
                (10, 44 + 20 * k as i32),
                style.clone(),
            ))
            .map_err(|e| perr(path, e))?;
    }
    root.present().map_err(|e| perr(path, e))
}

fn draw_toys<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    path: &Path,
    title: &str,
    xdesc: &str,
    toys: &[f64],
    observed: f64,
    density: Option<&dyn Fn(f64) -> f64>,
) -> Result<()> {
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let (lo, hi) = range(toys.iter().copied().chain([observed]));
    let (lo, hi) = (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo));
    let nbins = ((toys.len() as f64).sqrt().ceil() as usize).clamp(5, 50);
    let w = (hi - lo) / nbins as f64;
    let mut counts = vec![0.0; nbins];
    for &t in toys {
        let k = (((t - lo) / w) as usize).min(nbins - 1);
        counts[k] += 1.0;
    }
    let ymax = counts.iter().copied().fold(1.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(lo..hi, 0.0..ymax)
        .map_err(|e| perr(path, e))?;
    chart
        .configure_mesh()
        .x_desc(xdesc)
        .y_desc("toys")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| perr(path, e))?;
    let c = COLORS[0];
    chart
        .draw_series((0..nbins).map(|k| {
            let x0 = lo + k as f64 * w;
            Rectangle::new([(x0, 0.0), (x0 + w, counts[k])], c.mix(0.5).filled())
        }))
        .map_err(|e| perr(path, e))?
        .label(format!("toys ({})", toys.len()))
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.mix(0.5).filled()));
    if let Some(f) = density {
        let scale = toys.len() as f64 * w;
        chart
            .draw_series(LineSeries::new(
                (0..=200).map(|k| {
                    let x = lo + (hi - lo) * k as f64 / 200.0;
                    (x, scale * f(x))
                }),
                COLORS[2].stroke_width(2),
            ))
            .map_err(|e| perr(path, e))?
            .label("asymptotic density")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], COLORS[2].stroke_width(2))
            });
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(observed, 0.0), (observed, ymax)],
            COLORS[3].stroke_width(3),
        )))
        .map_err(|e| perr(path, e))?
        .label(format!("observed {observed:.3}"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], COLORS[3].stroke_width(3)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| perr(path, e))?;
    root.present().map_err(|e| perr(path, e))
}

/// Writes `tf_surface`, `tf_slices`, `projections` and `pulls` (SVG + PNG)
/// into `dir`; returns the paths.
pub fn fit_figures(dir: &Path, r: &FitReport) -> Result<Vec<PathBuf>> {
    let mut out = draw_both!(dir, "tf_surface", (860, 640), draw_tf_surface, r)?;
    out.extend(draw_both!(
        dir,
        "tf_slices",
        (1300, 560),
        draw_tf_slices,
        r
    )?);
    let na = r.axes.len() as u32;
    out.extend(draw_both!(
        dir,
        "projections",
        (1300, 460 * na),
        draw_projections,
        r
    )?);
    let n = r
        .parameters
        .iter()
        .filter(|p| p.constraint.is_some())
        .count() as u32;
    out.extend(draw_both!(
        dir,
        "pulls",
        (1000, (160 + 28 * n).max(420)),
        draw_pulls,
        r
    )?);
    Ok(out)
}

/// Writes `<stem>.svg/png`: a histogram of toy values with the observed one
/// (and, optionally, an asymptotic density).
pub fn toys_figure(
    dir: &Path,
    stem: &str,
    title: &str,
    xdesc: &str,
    toys: &[f64],
    observed: f64,
    density: Option<&dyn Fn(f64) -> f64>,
) -> Result<Vec<PathBuf>> {
    draw_both!(
        dir,
        stem,
        (860, 560),
        draw_toys,
        title,
        xdesc,
        toys,
        observed,
        density
    )
}
