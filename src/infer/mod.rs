//! Statistical inference: fits, test statistics, asymptotic CLs, upper limits.
