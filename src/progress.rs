//! The progress bar of long CLI runs (indicatif, on stderr): one style for
//! every command, hidden with `--quiet`.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over `n` units named `what` ("toys", "gradients", …), with elapsed
/// time, ETA and the bar's message; hidden when `quiet`.
pub(crate) fn bar(n: u64, quiet: bool, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr());
    b.set_style(
        ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {what} ({{eta}} left) {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    b.enable_steady_tick(Duration::from_millis(250));
    b
}
