//! Typed errors. Every user-facing failure has a variant that carries enough
//! context (a JSON path, a channel/sample/modifier name, a bin index) for the
//! user to find and fix the problem without reading our source.

use thiserror::Error;

/// Crate-wide result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error anagrad reports.
#[derive(Debug, Error)]
pub enum Error {
    /// I/O failure with the path involved.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Malformed JSON (syntax or shape), with serde's location.
    #[error("{context}: invalid JSON: {source}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },
    /// A workspace that parses but is not a valid HistFactory workspace.
    /// `location` is a JSON-path-like string, e.g.
    /// `channels[1].samples[0].modifiers[2] (histosys 'jes')`.
    #[error("{location}: {message}")]
    Workspace { location: String, message: String },
    /// A JSON patch that cannot be applied.
    #[error("patch {patch}: {message}")]
    Patch { patch: String, message: String },
    /// Invalid arguments to a model/inference call (wrong parameter count, bad
    /// data length, unknown parameter name, ...).
    #[error("{0}")]
    InvalidInput(String),
    /// A fit that did not converge; never returned as a silent result.
    #[error("fit did not converge ({context}): {message}")]
    FitFailed { context: String, message: String },
    /// A fit whose global minimum is not unique to within a tolerance: two
    /// distinct minima with (nearly) the same `-2 ln L`. Values at the
    /// minimum are fine, but gradients through it are discontinuous there,
    /// so the differentiable losses refuse to return one.
    #[error("ambiguous minimum ({context}): {message}")]
    AmbiguousMinimum { context: String, message: String },
    /// A fit whose minimum lies on a domain wall (the expected rate of a bin
    /// with no observed events driven to 0, `FitResult::walls`). The value is
    /// the constrained minimum, but the minimiser then moves along the wall
    /// as the inputs change, so envelope-theorem gradients miss a term and
    /// the differentiable losses refuse to return one.
    #[error("minimum on a domain wall ({context}): {message}")]
    WallMinimum { context: String, message: String },
    /// A fit whose infimum is not attained: some start ends, unconverged, at
    /// a point below every converged minimum (e.g. at pyhf's histosys code-2
    /// jump at |α| = 1, where the rate is discontinuous). No parameter
    /// values minimise `-2 ln L`, so none are reported.
    #[error("no minimum ({context}): {message}")]
    NoMinimum { context: String, message: String },
    /// Invalid input to an event-level op (NaN data, bad edges, bandwidth ≤ 0, ...).
    #[error("{op}: {message}")]
    Op { op: &'static str, message: String },
    /// An error from the tensor library.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An invalid study/run configuration: `key` is the TOML key (dotted path,
    /// with an index for list items, e.g. `ratios[2]`), `message` says what is wrong.
    #[error("config key `{key}`: {message}")]
    Config { key: String, message: String },
    /// A figure that could not be drawn or written.
    #[error("plot {path}: {message}")]
    Plot { path: String, message: String },
}
