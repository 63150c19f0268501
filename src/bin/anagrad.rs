//! The `anagrad` command-line interface.
use clap::{Parser, Subcommand};

/// Differentiable particle-physics analysis.
#[derive(Debug, Parser)]
#[command(name = "anagrad", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Gradient mean/std/bias/RMSE of a bKDE pipeline vs bandwidth (issue 6).
    BandwidthStudy(anagrad::study::BandwidthStudyArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::BandwidthStudy(args) => anagrad::study::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
