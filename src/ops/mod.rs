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

/// The contiguous data of a CPU storage as `&[T]`, for custom ops' CPU
/// kernels; a strided layout or another dtype is an error naming `op`.
pub(crate) fn cpu_slice<'a, T: candle_core::WithDType>(
    op: &str,
    (s, l): (&'a candle_core::CpuStorage, &candle_core::Layout),
) -> candle_core::Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: non-contiguous input"),
    }
}
