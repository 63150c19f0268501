//! `anagrad train` from Python: a configuration (TOML text, or JSON text from
//! a dict) trained with the GIL released, its `TrainReport` returned as JSON.
//! The Python side (`anagrad.train`) turns dicts into JSON, paths into text,
//! and maps sweeps over Dask.

use std::path::PathBuf;

use anagrad::train::{config::DEFAULT_TOML, RunOptions, TrainConfig};
use anagrad::Error;
use candle_core::Device;
use pyo3::prelude::*;

use crate::{run, to_pyerr};

fn config_error(message: String) -> Error {
    Error::Config {
        key: String::new(),
        message,
    }
}

/// A TOML key segment: bare if it can be, else quoted.
fn key_segment(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        k.to_string()
    } else {
        serde_json::Value::String(k.to_string()).to_string()
    }
}

/// The leaves of a JSON object as `(dotted key, TOML line)`, one line per
/// value (`training.objective = "cls"`); `null`s are left out (an absent
/// optional key takes its default).
fn flatten(
    v: &serde_json::Map<String, serde_json::Value>,
    prefix: &str,
    lines: &mut Vec<(String, String)>,
) -> anagrad::Result<()> {
    for (k, v) in v {
        let key = if prefix.is_empty() {
            key_segment(k)
        } else {
            format!("{prefix}.{}", key_segment(k))
        };
        match v {
            serde_json::Value::Null => {}
            serde_json::Value::Object(m) => flatten(m, &key, lines)?,
            leaf => {
                let value = toml::Value::try_from(leaf).map_err(|e| Error::Config {
                    key: key.clone(),
                    message: format!("not a TOML value: {e}"),
                })?;
                lines.push((key.clone(), format!("{key} = {value}")));
            }
        }
    }
    Ok(())
}

/// Parses and validates a configuration: TOML text, or (`json`) a JSON
/// object with the same keys. The JSON is written as TOML, one dotted key per
/// line, and parsed as TOML, so that both give the same defaults and checks;
/// a value of the wrong type is reported with its dotted key.
fn parse(text: &str, json: bool) -> anagrad::Result<TrainConfig> {
    if !json {
        return TrainConfig::from_toml(text);
    }
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| config_error(format!("not a JSON configuration: {e}")))?;
    let serde_json::Value::Object(map) = v else {
        return Err(config_error(
            "a configuration is a table (dict) of keys".into(),
        ));
    };
    let mut lines = Vec::new();
    flatten(&map, "", &mut lines)?;
    let toml_text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    let cfg: TrainConfig = toml::from_str(&toml_text).map_err(|e| {
        // the line of the error's span names the key
        let key = e
            .span()
            .map(|s| {
                toml_text[..s.start.min(toml_text.len())]
                    .matches('\n')
                    .count()
            })
            .and_then(|line| lines.get(line))
            .map(|(k, _)| k.clone())
            .unwrap_or_default();
        Error::Config {
            key,
            message: e.message().to_string(),
        }
    })?;
    cfg.validate()?;
    Ok(cfg)
}

fn to_json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| to_pyerr(config_error(format!("cannot serialise: {e}"))))
}

/// The embedded default configuration of `anagrad train` (TOML text).
#[pyfunction]
fn train_default_toml() -> &'static str {
    DEFAULT_TOML
}

/// Parses and validates a configuration (TOML text, or JSON text if `json`);
/// returns the complete configuration, defaults filled in, as JSON.
#[pyfunction]
#[pyo3(signature = (text, json = false))]
fn train_config(text: &str, json: bool) -> PyResult<String> {
    to_json(&parse(text, json).map_err(to_pyerr)?)
}

/// Trains a configuration from scratch into the folder `out` (created) and
/// returns the `TrainReport` as JSON. Runs without the GIL, in a pool of
/// `threads` threads (None: the default of `set_num_threads`).
#[pyfunction]
#[pyo3(signature = (text, json, out, figures = false, progress = false, threads = None))]
fn train(
    py: Python<'_>,
    text: &str,
    json: bool,
    out: PathBuf,
    figures: bool,
    progress: bool,
    threads: Option<usize>,
) -> PyResult<String> {
    let cfg = parse(text, json).map_err(to_pyerr)?;
    let opts = RunOptions {
        out,
        device: Device::Cpu,
        progress,
        figures,
    };
    let report = run(py, threads, || anagrad::train::train(&cfg, &opts))?;
    to_json(&report)
}

/// Adds the training functions to the compiled module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(train_default_toml, m)?)?;
    m.add_function(wrap_pyfunction!(train_config, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    Ok(())
}
