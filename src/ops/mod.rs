//! Event-level differentiable ops on candle tensors.
