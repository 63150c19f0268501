//! Event-level differentiable ops on candle tensors.
//!
//! * [`normal`]: fast standard-normal Φ/φ with documented accuracy.
//! * [`cut`]: sigmoid cuts (event weights) and their hard twins.
//! * [`hist`]: the binned-KDE histogram (fused candle `CustomOp`, CPU and
//!   CUDA) and the hard histogram for evaluation.
//! * [`edges`]: learnable, always-monotone bin edges.

pub(crate) mod check;
pub mod cut;
pub mod edges;
pub mod hist;
pub mod normal;
