//! The Asimov-reach variance study of the fiducial toy (issue 14): the exact
//! q_A by quadrature, then plain against importance-sampled Monte Carlo over
//! seeded replicas, printed as a Markdown table.
//!
//! ```text
//! cargo run --example fiducial_reach                   # the default study
//! cargo run --example fiducial_reach -- reach.toml     # a [reach] table
//! cargo run --example fiducial_reach -- reach.toml out.json
//! ```

use anagrad::fiducial::reach::{run, ReachConfig};
use anagrad::toys::Fiducial;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    reach: ReachConfig,
}

fn main() -> anagrad::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match args.first() {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| anagrad::Error::Io {
                path: path.clone(),
                source,
            })?;
            toml::from_str::<File>(&text)
                .map_err(|e| anagrad::Error::Config {
                    key: "reach".into(),
                    message: format!("{path}: {e}"),
                })?
                .reach
        }
        None => ReachConfig::default(),
    };
    let table = run(&Fiducial::default(), &cfg)?;
    println!("{}", table.to_markdown());
    if let Some(out) = args.get(1) {
        let json = serde_json::to_string_pretty(&table).map_err(|source| anagrad::Error::Json {
            context: out.clone(),
            source,
        })?;
        std::fs::write(out, json).map_err(|source| anagrad::Error::Io {
            path: out.clone(),
            source,
        })?;
        println!("wrote {out}");
    }
    Ok(())
}
