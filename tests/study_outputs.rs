//! A small study end to end: the library run, the files it writes (CSV header
//! exact, JSON of every cell, SVG + PNG figures) and the `bandwidth-study`
//! subcommand of the binary.

use std::process::Command;

use anagrad::study::output::CSV_HEADER;
use anagrad::study::{run, BandwidthStudyArgs};

const SMALL: &str = r#"
ns = [50, 400]
ratios = [0.05, 0.2, 1.0]
datasets = 24
seed = 3
"#;

fn check_folder(dir: &std::path::Path) {
    let csv = std::fs::read_to_string(dir.join("cells.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER));
    assert_eq!(CSV_HEADER, "n,ratio,mean,std,true,bias,rmse");
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 6);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), 7);
        assert_eq!(row[0], [50.0, 400.0][i / 3]);
        assert_eq!(row[1], [0.05, 0.2, 1.0][i % 3]);
        assert!(row.iter().all(|v| v.is_finite()));
        assert!(row[3] > 0.0, "std > 0");
        assert!(
            (row[5] - (row[2] - row[4])).abs() <= 1e-12 * row[2].abs().max(1.0),
            "bias = mean − true"
        );
        assert!(
            (row[6] - row[5].hypot(row[3])).abs() <= 1e-12 * row[6],
            "rmse"
        );
    }

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("study.json")).unwrap()).unwrap();
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 6);
    for (cell, row) in cells.iter().zip(&rows) {
        assert_eq!(cell["n"].as_f64().unwrap(), row[0]);
        assert_eq!(cell["ratio"].as_f64().unwrap(), row[1]);
        assert_eq!(cell["datasets"].as_u64().unwrap(), 24);
        let mean = cell["mean"].as_f64().unwrap();
        assert!((mean - row[2]).abs() <= 1e-12 * mean.abs());
        assert!(cell["true"].as_f64().is_some());
    }
    assert_eq!(json["optima"].as_array().unwrap().len(), 2);
    assert_eq!(json["config"]["datasets"].as_u64(), Some(24));

    for stem in ["std_vs_ratio", "bias_vs_ratio", "rmse_vs_ratio"] {
        let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("N = 400"),
            "{stem}.svg"
        );
        let png = std::fs::read(dir.join(format!("{stem}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}.png");
        assert!(png.len() > 5_000, "{stem}.png is suspiciously small");
    }
}

#[test]
fn library_run_writes_parseable_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("study.toml");
    std::fs::write(&cfg, SMALL).unwrap();
    let out = dir.path().join("out");
    run(&BandwidthStudyArgs {
        config: Some(cfg),
        out: Some(out.clone()),
        quiet: true,
        ..Default::default()
    })
    .unwrap();
    check_folder(&out);
}

#[test]
fn binary_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("study.toml");
    std::fs::write(&cfg, SMALL).unwrap();
    let out = dir.path().join("bin-out");
    let res = Command::new(env!("CARGO_BIN_EXE_anagrad"))
        .arg("bandwidth-study")
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(
        res.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(stdout.contains("RMSE-optimal r"), "{stdout}");
    assert!(
        stdout.contains(&format!("output folder: {}", out.display())),
        "{stdout}"
    );
    check_folder(&out);
}

#[test]
fn binary_reports_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "ratios = [0.1, -1.0]\n").unwrap();
    let res = Command::new(env!("CARGO_BIN_EXE_anagrad"))
        .arg("bandwidth-study")
        .arg(&cfg)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("ratios[1]"), "{stderr}");
}
