//! The `anagrad` command-line interface: a thin layer over the library
//! (`anagrad::hf` to read workspaces and build models, `anagrad::infer` for
//! fits, CLs, significances and limits). Output is JSON with pyhf's keys.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Map, Value};

use anagrad::hf::{InterpCode, Model, ModelOptions, PatchSet, Validation, Warning, Workspace};
use anagrad::infer::limits::linspace;
use anagrad::infer::toys::{
    toy_distributions, upper_limit_toys_refined, write_outputs, Shard, ToyDistributions, ToyOptions,
};
use anagrad::infer::{
    fit, fixed_poi_fit, significance, upper_limit, upper_limit_scan, AsymptoticCalculator,
    FitOptions, FitSetup, Likelihood, LimitOptions, TestStat,
};
use anagrad::{Error, Result};

#[derive(Parser, Debug)]
#[command(
    name = "anagrad",
    version,
    about = "pyhf-compatible HistFactory inference: fits, asymptotic CLs, significances, upper limits",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// CLs (observed and expected band) at one POI value, like `pyhf cls`:
    /// asymptotic, or from toys (`--calctype toybased`).
    ///
    /// Prints JSON with pyhf's keys: `CLs_obs`, `CLs_exp` (n_sigma = 2, 1, 0, −1, −2),
    /// plus `CLsb_obs`, `CLb_obs`, `CLsb_exp`, `CLb_exp` (and `qmu`, `qmu_A`
    /// asymptotically). With toys, the test-statistic distributions and their
    /// figure go to an output folder (`--out`), printed on stderr.
    Cls(ClsArgs),
    /// Discovery p-value and significance with q0 (observed and expected band).
    Significance(SignificanceArgs),
    /// Maximum-likelihood fit, like `pyhf fit`.
    Fit(FitArgs),
    /// Observed and expected upper limits on the POI at a CLs level.
    UpperLimit(UpperLimitArgs),
    /// Toy ensembles: merge the shards of a `cls --calctype toybased --shard K/N` job array.
    Toys(ToysArgs),
    /// Summary of a workspace: channels, samples, modifiers, parameters, measurements.
    Inspect(InspectArgs),
    /// pyhf patchsets (a signal patch per hypothesis, as published on HEPData):
    /// list the patches, or write a workspace with one applied.
    Patchset(PatchsetArgs),
    /// Gradient mean/std/bias/RMSE of a bKDE pipeline vs bandwidth.
    BandwidthStudy(anagrad::study::BandwidthStudyArgs),
    /// Train a summary statistic (and bin edges) end to end on an analysis
    /// objective (neos blobs toy by default); writes metrics, checkpoints, figures.
    Train(anagrad::train::TrainArgs),
    /// Transfer-function (CR -> SR) workflow on a pass/fail config: fit, gof, ftest, toy.
    Transfer(anagrad::transfer::TransferArgs),
    /// Fiducial cuts: an ensemble of sigmoid boxes optimised on Z0 through the
    /// fits, clustered into distinct optima and united; vs the grid-search box.
    FiducialCuts(anagrad::fiducial::FiducialCutsArgs),
}

/// Options that select and build the model (shared by every subcommand).
#[derive(Args, Debug)]
struct ModelArgs {
    /// pyhf JSON workspace (schema 1.0.0); `-` reads it from standard input.
    #[arg(value_name = "WORKSPACE", default_value = "-")]
    workspace: String,
    /// Measurement to use (default: the only one, or the first one).
    #[arg(long, value_name = "NAME")]
    measurement: Option<String>,
    /// JSON patch file (RFC 6902) applied to the workspace before building
    /// the model; repeatable, applied in the order given.
    #[arg(short = 'p', long = "patch", value_name = "PATCH")]
    patches: Vec<PathBuf>,
    /// pyhf patchset (e.g. a HEPData signal patchset for this background-only
    /// workspace): apply its patch `--patch-name` first, like `pyhf patchset
    /// apply` (its sha256 digest of the workspace is checked), then any `-p`.
    #[arg(long, value_name = "PATCHSET", requires = "patch_name")]
    patchset: Option<PathBuf>,
    /// Name of the patch of `--patchset` to apply (`anagrad patchset ls PATCHSET` lists them).
    #[arg(long, value_name = "NAME", requires = "patchset")]
    patch_name: Option<String>,
    /// Strict validation: inputs that pyhf accepts and anagrad by default
    /// accepts with a warning (parameter configs for parameters the model does
    /// not have, negative nominal yields, observations of unknown channels)
    /// are errors.
    #[arg(long)]
    strict: bool,
    /// Interpolation code of normsys modifiers (pyhf's default: code4).
    #[arg(long, value_name = "CODE", value_parser = ["code1", "code4"], default_value = "code4")]
    normsys_interp: String,
    /// Interpolation code of histosys modifiers (pyhf's default: code4p).
    #[arg(long, value_name = "CODE", value_parser = ["code0", "code2", "code4p"], default_value = "code4p")]
    histosys_interp: String,
    /// Write the JSON result to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    output_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ClsArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// POI value to test.
    #[arg(
        long,
        value_name = "MU",
        default_value_t = 1.0,
        allow_negative_numbers = true
    )]
    test_poi: f64,
    /// Test statistic: `qtilde` (q̃μ, POI bounded below), `q` (qμ), or
    /// (toys only) `q0` (discovery; CLs_obs is then p0, as in pyhf).
    #[arg(long, value_name = "STAT", value_parser = ["qtilde", "q", "q0"], default_value = "qtilde")]
    test_stat: String,
    #[command(flatten)]
    toys: ToyArgs,
    /// Run only shard K of N of the toy ensemble (one-based, `--shard 3/10`),
    /// for job arrays; its distributions file is named after the shard and
    /// `anagrad toys merge` combines the shards into the unsharded result,
    /// bit for bit.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
}

/// How CLs is computed (pyhf's `calctype`) and the toys' options.
#[derive(Args, Debug)]
struct ToyArgs {
    /// `asymptotics` (pyhf's default) or `toybased` (pyhf's ToyCalculator
    /// semantics: toys at the conditional fits to the data, empirical
    /// p-values, the band from the background toys).
    #[arg(long, value_name = "CALC", value_parser = ["asymptotics", "toybased"], default_value = "asymptotics")]
    calctype: String,
    /// Toys per hypothesis (pyhf's default 2000).
    #[arg(long, value_name = "N", default_value_t = 2000)]
    ntoys: usize,
    /// Seed of the toy ensemble (each toy has its own generator derived
    /// from it: the result does not depend on threads or shards).
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    seed: u64,
    /// Output folder for the toys' distributions (JSON) and figure (SVG, PNG).
    #[arg(long, value_name = "DIR", default_value = "runs/toys")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct ToysArgs {
    #[command(subcommand)]
    command: ToysCommand,
}

#[derive(Subcommand, Debug)]
enum ToysCommand {
    /// Merge the distributions files of the shards of one ensemble into the
    /// unsharded result: prints the CLs JSON (pyhf's keys) and writes the
    /// merged distributions, result and figure into `-o DIR`.
    Merge {
        /// Shard files (`distributions_shard_K_of_N.json` from `cls --shard`).
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// Output folder of the merged distributions, result and figure.
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
        /// Also write the CLs JSON to this file.
        #[arg(long, value_name = "FILE")]
        output_file: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct SignificanceArgs {
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Args, Debug)]
struct FitArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Hold the POI at this value (pyhf's `fixed_poi_fit`).
    #[arg(long, value_name = "MU", allow_negative_numbers = true)]
    fix_poi: Option<f64>,
    /// Fit the background-only Asimov data of the q̃μ/qμ hypotest instead of
    /// the observed data (expected main and auxiliary data at the fit with the
    /// POI at 0). With `--fix-poi MU` this is the hypotest's fixed-μ fit on
    /// the Asimov data, warm-started as the hypotest starts it (from the
    /// fixed-μ fit on the observed data).
    #[arg(long)]
    asimov: bool,
    /// Accepted for `pyhf fit` compatibility; `twice_nll` is always printed.
    #[arg(long)]
    value: bool,
}

#[derive(Args, Debug)]
struct UpperLimitArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Scan a grid `START:STOP:N` (N points, inclusive) and interpolate the
    /// crossings linearly, like pyhf's `upper_limit(scan=…)`; without it the
    /// limits are found by root finding. Required with `--calctype toybased`
    /// (CLs from toys at every grid point, each with its own seed; the tested
    /// points are also written to `--out`).
    #[arg(long, value_name = "START:STOP:N")]
    scan: Option<String>,
    /// With `--calctype toybased`: after the scan, this many rounds of root
    /// finding on the interpolated CLs, each testing the current crossings
    /// with new toys.
    #[arg(long, value_name = "ROUNDS", default_value_t = 0)]
    refine: usize,
    /// CLs level (0.05 for 95% CL limits).
    #[arg(long, value_name = "ALPHA", default_value_t = 0.05)]
    level: f64,
    /// Test statistic: `qtilde` or `q`.
    #[arg(long, value_name = "STAT", value_parser = ["qtilde", "q"], default_value = "qtilde")]
    test_stat: String,
    #[command(flatten)]
    toys: ToyArgs,
}

#[derive(Args, Debug)]
struct InspectArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct PatchsetArgs {
    #[command(subcommand)]
    command: PatchsetCommand,
}

#[derive(Subcommand, Debug)]
enum PatchsetCommand {
    /// List the patches: name and the values of the patchset's labels.
    Ls {
        /// pyhf patchset JSON file.
        #[arg(value_name = "PATCHSET")]
        patchset: PathBuf,
        /// Print JSON (description, labels, digests, patches) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Apply one patch to the background-only workspace and print the
    /// resulting workspace, like `pyhf patchset apply`.
    Apply {
        /// Background-only workspace; `-` reads it from standard input.
        #[arg(value_name = "WORKSPACE")]
        workspace: String,
        /// pyhf patchset JSON file.
        #[arg(value_name = "PATCHSET")]
        patchset: PathBuf,
        /// Name of the patch to apply.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Validate the result strictly (see `--strict` of `cls`).
        #[arg(long)]
        strict: bool,
        /// Write the workspace to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        output_file: Option<PathBuf>,
    },
}

fn validation(strict: bool) -> Validation {
    if strict {
        Validation::Strict
    } else {
        Validation::Lenient
    }
}

/// A workspace file (or standard input for `-`) as JSON, exactly as written.
fn read_json(path: &str) -> Result<Value> {
    let (text, label) = if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::Io {
                path: "<stdin>".into(),
                source: e,
            })?;
        (s, "<stdin>".to_string())
    } else {
        let s = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_string(),
            source: e,
        })?;
        (s, path.to_string())
    };
    serde_json::from_str(&text).map_err(|source| Error::Json {
        context: label,
        source,
    })
}

fn print_warnings(warnings: &[Warning]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// The workspace with the patchset's patch and the `-p` patches applied; the
/// patchset's warnings (the model's come with the model) are printed.
fn read_workspace(args: &ModelArgs) -> Result<Workspace> {
    let mode = validation(args.strict);
    let raw = read_json(&args.workspace)?;
    let mut ws = match (&args.patchset, &args.patch_name) {
        (Some(ps), Some(name)) => {
            let (ws, warnings) = PatchSet::from_path(ps)?.apply_json(&raw, name, mode)?;
            print_warnings(&warnings);
            ws
        }
        _ => Workspace::from_value_with(&raw, mode)?,
    };
    for p in &args.patches {
        let text = std::fs::read_to_string(p).map_err(|e| Error::Io {
            path: p.display().to_string(),
            source: e,
        })?;
        ws.apply_patch_with(&text, &p.display().to_string(), mode)?;
    }
    Ok(ws)
}

fn model_options(args: &ModelArgs) -> Result<ModelOptions> {
    Ok(ModelOptions {
        measurement: args.measurement.clone(),
        normsys_interp: args.normsys_interp.parse::<InterpCode>()?,
        histosys_interp: args.histosys_interp.parse::<InterpCode>()?,
        validation: validation(args.strict),
        ..ModelOptions::default()
    })
}

fn build(args: &ModelArgs) -> Result<(Workspace, Model)> {
    let ws = read_workspace(args)?;
    let model = Model::new(&ws, &model_options(args)?)?;
    print_warnings(model.warnings());
    Ok((ws, model))
}

fn write_text(output_file: Option<&PathBuf>, text: &str) -> Result<()> {
    match output_file {
        Some(path) => std::fs::write(path, text).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        }),
        None => {
            let mut out = std::io::stdout().lock();
            write!(out, "{text}").map_err(|e| Error::Io {
                path: "<stdout>".into(),
                source: e,
            })
        }
    }
}

fn cmd_patchset(a: &PatchsetArgs) -> Result<()> {
    match &a.command {
        PatchsetCommand::Ls { patchset, json } => {
            let ps = PatchSet::from_path(patchset)?;
            if *json {
                let out = json!({
                    "name": ps.name,
                    "description": ps.description,
                    "references": ps.references,
                    "digests": ps.digests,
                    "labels": ps.labels,
                    "patches": ps.patches.iter().map(|p| json!({"name": p.name, "values": p.values})).collect::<Vec<_>>(),
                });
                let text = serde_json::to_string_pretty(&out).map_err(|e| Error::Json {
                    context: "output".into(),
                    source: e,
                })?;
                return write_text(None, &(text + "\n"));
            }
            let show = |v: &Value| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let w = ps
                .patches
                .iter()
                .map(|p| p.name.len())
                .max()
                .unwrap_or(4)
                .max(4);
            let mut t = format!("{:<w$}  {}\n", "name", ps.labels.join("  "));
            for p in &ps.patches {
                let vals: Vec<String> = p.values.iter().map(show).collect();
                t += &format!("{:<w$}  {}\n", p.name, vals.join("  "));
            }
            write_text(None, &t)
        }
        PatchsetCommand::Apply {
            workspace,
            patchset,
            name,
            strict,
            output_file,
        } => {
            let raw = read_json(workspace)?;
            let ps = PatchSet::from_path(patchset)?;
            let (_, warnings) = ps.apply_json(&raw, name, validation(*strict))?;
            print_warnings(&warnings);
            let v = ps.apply_value(&raw, name)?;
            let text = serde_json::to_string_pretty(&v).map_err(|e| Error::Json {
                context: "output".into(),
                source: e,
            })?;
            write_text(output_file.as_ref(), &(text + "\n"))
        }
    }
}

fn emit(args: &ModelArgs, v: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::Json {
        context: "output".into(),
        source: e,
    })?;
    match &args.output_file {
        Some(path) => std::fs::write(path, text + "\n").map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        }),
        None => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}").map_err(|e| Error::Io {
                path: "<stdout>".into(),
                source: e,
            })
        }
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Json {
        context: "output".into(),
        source: e,
    })
}

fn calculator<'m>(model: &'m Model, test_stat: &str) -> Result<AsymptoticCalculator<'m, Model>> {
    let kind: TestStat = test_stat.parse()?;
    AsymptoticCalculator::new(
        model,
        &model.observed_data(),
        FitSetup::from_model(model),
        FitOptions::default(),
        kind,
    )
}

fn toy_options(t: &ToyArgs, shard: Option<&str>) -> Result<ToyOptions> {
    Ok(ToyOptions {
        ntoys: t.ntoys,
        seed: t.seed,
        shard: shard.map(Shard::parse).transpose()?.unwrap_or(Shard::ALL),
        fit: FitOptions::default(),
        progress: !t.quiet,
    })
}

fn report_outputs(dir: &std::path::Path, written: &[PathBuf], d: &ToyDistributions) {
    let failed = d.signal_plus_background.failures.len() + d.background.failures.len();
    if failed > 0 {
        eprintln!(
            "warning: {failed} toys failed (left out of the p-values; listed in {})",
            written[0].display()
        );
    }
    eprintln!("toys: wrote {} files to {}", written.len(), dir.display());
}

fn cmd_cls(a: &ClsArgs) -> Result<()> {
    if a.toys.calctype == "asymptotics" {
        if a.shard.is_some() {
            return Err(Error::InvalidInput(
                "--shard needs --calctype toybased".into(),
            ));
        }
        if a.test_stat == "q0" {
            return Err(Error::InvalidInput(
                "--test-stat q0 is for toys; asymptotically use `anagrad significance`".into(),
            ));
        }
        let (_, model) = build(&a.model)?;
        let r = calculator(&model, &a.test_stat)?.hypotest(a.test_poi)?;
        return emit(&a.model, &to_value(&r)?);
    }
    let opts = toy_options(&a.toys, a.shard.as_deref())?;
    let (_, model) = build(&a.model)?;
    let stat: TestStat = a.test_stat.parse()?;
    let d = toy_distributions(
        &model,
        &model.observed_data(),
        a.test_poi,
        stat,
        &FitSetup::from_model(&model),
        &opts,
    )?;
    let r = d.result()?;
    let stem = if opts.shard == Shard::ALL {
        "distributions".to_string()
    } else {
        format!(
            "distributions_shard_{}_of_{}",
            opts.shard.index + 1,
            opts.shard.count
        )
    };
    let written = write_outputs(&a.toys.out, &stem, &d, Some(&r))?;
    report_outputs(&a.toys.out, &written, &d);
    let mut v = to_value(&r)?;
    if opts.shard != Shard::ALL {
        eprintln!(
            "note: shard {}/{}: these p-values use this shard's toys only; \
             `anagrad toys merge` the shards for the result",
            opts.shard.index + 1,
            opts.shard.count
        );
        if let Value::Object(m) = &mut v {
            m.insert(
                "shard".into(),
                json!(format!("{}/{}", opts.shard.index + 1, opts.shard.count)),
            );
        }
    }
    emit(&a.model, &v)
}

fn cmd_toys(a: &ToysArgs) -> Result<()> {
    match &a.command {
        ToysCommand::Merge {
            files,
            out,
            output_file,
        } => {
            let parts = files
                .iter()
                .map(|f| {
                    let text = std::fs::read_to_string(f).map_err(|e| Error::Io {
                        path: f.display().to_string(),
                        source: e,
                    })?;
                    serde_json::from_str::<ToyDistributions>(&text).map_err(|e| Error::Json {
                        context: f.display().to_string(),
                        source: e,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let merged = ToyDistributions::merge(parts)?;
            if !merged.is_complete() {
                let have: Vec<String> = merged
                    .shards
                    .iter()
                    .map(|s| format!("{}/{}", s.index + 1, s.count))
                    .collect();
                eprintln!(
                    "warning: the merged shards ({}) cover {} of {} toys per hypothesis",
                    have.join(", "),
                    merged.background.indices.len(),
                    merged.ntoys
                );
            }
            let r = merged.result()?;
            let written = write_outputs(out, "distributions", &merged, Some(&r))?;
            report_outputs(out, &written, &merged);
            let text = serde_json::to_string_pretty(&r).map_err(|e| Error::Json {
                context: "output".into(),
                source: e,
            })?;
            if let Some(f) = output_file {
                write_text(Some(f), &(text.clone() + "\n"))?;
            }
            write_text(None, &(text + "\n"))
        }
    }
}

fn cmd_significance(a: &SignificanceArgs) -> Result<()> {
    let (_, model) = build(&a.model)?;
    let r = significance(&model, &model.observed_data(), &FitOptions::default())?;
    emit(&a.model, &to_value(&r)?)
}

/// `{name: [values]}` over the model's parameter sets.
fn by_par_set(model: &Model, values: &[f64]) -> Value {
    let mut m = Map::new();
    for (name, start, len) in model.par_sets() {
        m.insert(name, json!(values[start..start + len].to_vec()));
    }
    Value::Object(m)
}

fn cmd_fit(a: &FitArgs) -> Result<()> {
    let (_, model) = build(&a.model)?;
    let setup = FitSetup::from_model(&model);
    let opts = FitOptions::default();
    let observed = model.observed_data();
    let r = match (a.fix_poi, a.asimov) {
        (None, false) => fit(&model, &observed, &setup, &opts)?,
        (Some(mu), false) => fixed_poi_fit(&model, &observed, mu, &setup, None, &opts)?,
        (None, true) => fit(
            &model,
            calculator(&model, "qtilde")?.asimov_data(),
            &setup,
            &opts,
        )?,
        (Some(mu), true) => {
            let calc = calculator(&model, "qtilde")?;
            let on_data = fixed_poi_fit(
                &model,
                &observed,
                mu,
                &setup,
                Some(&calc.free_fit().pars),
                &opts,
            )?;
            fixed_poi_fit(
                &model,
                calc.asimov_data(),
                mu,
                &setup,
                Some(&on_data.pars),
                &opts,
            )?
        }
    };
    let unc = r.uncertainties()?;
    let out = json!({
        "data": if a.asimov { "asimov (background-only, POI 0)" } else { "observed" },
        "fixed_poi": a.fix_poi,
        "mle_parameters": by_par_set(&model, &r.pars),
        "uncertainties": by_par_set(&model, &unc),
        "twice_nll": r.twice_nll,
        "iterations": r.iterations,
        "projected_gradient_norm": r.grad_norm,
        "starts": r.starts,
        "minima_found": r.minima,
        "runner_up_twice_nll": r.runner_up,
    });
    if r.is_ambiguous(1e-6) {
        eprintln!(
            "warning: another minimum lies within 1e-6 of the best fit (twice_nll {} vs {:?}): \
             the best-fit parameters are not unique",
            r.twice_nll, r.runner_up
        );
    }
    emit(&a.model, &out)
}

fn parse_scan(s: &str) -> Result<Vec<f64>> {
    let bad = || Error::InvalidInput(format!("--scan '{s}': expected START:STOP:N, e.g. 0:5:21"));
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 3 {
        return Err(bad());
    }
    let start: f64 = parts[0].trim().parse().map_err(|_| bad())?;
    let stop: f64 = parts[1].trim().parse().map_err(|_| bad())?;
    let n: usize = parts[2].trim().parse().map_err(|_| bad())?;
    if n < 2 || !start.is_finite() || !stop.is_finite() || start >= stop {
        return Err(bad());
    }
    Ok(linspace(start, stop, n))
}

fn cmd_upper_limit_toys(a: &UpperLimitArgs) -> Result<()> {
    let grid = parse_scan(a.scan.as_deref().ok_or_else(|| {
        Error::InvalidInput(
            "upper-limit --calctype toybased needs a grid: --scan START:STOP:N".into(),
        )
    })?)?;
    let opts = toy_options(&a.toys, None)?;
    let (_, model) = build(&a.model)?;
    let stat: TestStat = a.test_stat.parse()?;
    let (obs, exp, tested) = upper_limit_toys_refined(
        &model,
        &model.observed_data(),
        &grid,
        a.level,
        stat,
        &FitSetup::from_model(&model),
        &opts,
        a.refine,
    )?;
    let failed: usize = tested.iter().map(|t| t.failed[0] + t.failed[1]).sum();
    if failed > 0 {
        eprintln!("warning: {failed} toys failed over the scan (per point in `tested`)");
    }
    let out = json!({
        "obs_limit": obs,
        "exp_limits": exp,
        "level": a.level,
        "calctype": "toybased",
        "ntoys": a.toys.ntoys,
        "seed": a.toys.seed,
        "tested": tested,
    });
    std::fs::create_dir_all(&a.toys.out).map_err(|e| Error::Io {
        path: a.toys.out.display().to_string(),
        source: e,
    })?;
    let path = a.toys.out.join("upper_limit.json");
    anagrad::infer::toys::write_json(&path, &out)?;
    eprintln!("toys: wrote {}", path.display());
    emit(&a.model, &out)
}

fn cmd_upper_limit(a: &UpperLimitArgs) -> Result<()> {
    if a.toys.calctype == "toybased" {
        return cmd_upper_limit_toys(a);
    }
    let grid = a.scan.as_deref().map(parse_scan).transpose()?;
    let (_, model) = build(&a.model)?;
    let calc = calculator(&model, &a.test_stat)?;
    let r = match grid {
        Some(g) => upper_limit_scan(&calc, &g, a.level)?,
        None => upper_limit(
            &calc,
            &LimitOptions {
                level: a.level,
                ..LimitOptions::default()
            },
        )?,
    };
    let tested: Vec<Value> = r
        .tested
        .iter()
        .map(|t| json!({"poi": t.poi_test, "CLs_obs": t.cls_obs, "CLs_exp": t.cls_exp}))
        .collect();
    let out = json!({
        "obs_limit": r.obs_limit,
        "exp_limits": r.exp_limits,
        "level": r.level,
        "tested": tested,
    });
    emit(&a.model, &out)
}

fn constraint_name(types: &[&str]) -> &'static str {
    if types
        .iter()
        .all(|t| *t == "normfactor" || *t == "shapefactor")
    {
        "unconstrained"
    } else if types.contains(&"shapesys") {
        "constrained_by_poisson"
    } else {
        "constrained_by_normal"
    }
}

fn cmd_inspect(a: &InspectArgs) -> Result<()> {
    let (ws, model) = build(&a.model)?;
    let channels: Vec<(String, usize)> = ws
        .channels
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.samples.first().map_or(0, |s| s.data.len()),
            )
        })
        .collect();
    let mut samples: Vec<String> = Vec::new();
    let mut modifiers: Vec<(String, String)> = Vec::new();
    for c in &ws.channels {
        for s in &c.samples {
            if !samples.contains(&s.name) {
                samples.push(s.name.clone());
            }
            for m in &s.modifiers {
                let key = (m.name.clone(), m.modifier_type().as_str().to_string());
                if !modifiers.contains(&key) {
                    modifiers.push(key);
                }
            }
        }
    }
    samples.sort();
    modifiers.sort();
    let parameters: Vec<(String, usize, &'static str, Vec<String>)> = model
        .par_sets()
        .into_iter()
        .map(|(name, _, len)| {
            let types: Vec<String> = modifiers
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, t)| t.clone())
                .collect();
            let trefs: Vec<&str> = types.iter().map(String::as_str).collect();
            (name, len, constraint_name(&trefs), types)
        })
        .collect();
    let measurements: Vec<(String, String, Vec<String>)> = ws
        .measurements
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                m.config.poi.clone(),
                m.config.parameters.iter().map(|p| p.name.clone()).collect(),
            )
        })
        .collect();
    if a.json {
        let out = json!({
            "channels": channels.iter().map(|(n, b)| json!([n, b])).collect::<Vec<_>>(),
            "samples": samples,
            "modifiers": modifiers.iter().map(|(n, t)| json!([n, t])).collect::<Vec<_>>(),
            "parameters": parameters.iter().map(|(n, len, c, t)| json!({
                "name": n, "n_pars": len, "constraint": c, "modifiers": t
            })).collect::<Vec<_>>(),
            "measurements": measurements.iter().map(|(n, poi, pars)| json!({
                "name": n, "poi": poi, "parameters": pars
            })).collect::<Vec<_>>(),
            "n_parameters": model.n_pars(),
            "n_bins": model.n_main(),
        });
        return emit(&a.model, &out);
    }
    let mut t = String::new();
    let w = 24;
    t += &format!("{:>w$}\n{:>w$}\n", "Summary", "------------------");
    for (k, v) in [
        ("channels", channels.len()),
        ("samples", samples.len()),
        ("parameters", parameters.len()),
        ("modifiers", modifiers.len()),
    ] {
        t += &format!("{k:>w$}  {v}\n");
    }
    t += &format!(
        "\n{:>w$}  {}\n{:>w$}  {}\n",
        "channels", "nbins", "----------", "-----"
    );
    for (n, b) in &channels {
        t += &format!("{n:>w$}  {b:>5}\n");
    }
    t += &format!("\n{:>w$}\n{:>w$}\n", "samples", "----------");
    for s in &samples {
        t += &format!("{s:>w$}\n");
    }
    t += &format!(
        "\n{:>w$}  {:<24}{}\n{:>w$}  {:<24}{}\n",
        "parameters", "constraint", "modifiers", "----------", "----------", "----------"
    );
    for (n, _, c, types) in &parameters {
        t += &format!("{n:>w$}  {c:<24}{}\n", types.join(","));
    }
    t += &format!(
        "\n{:>w$}  {:<24}{}\n{:>w$}  {:<24}{}\n",
        "measurement", "poi", "parameters", "----------", "----------", "----------"
    );
    let selected = a
        .model
        .measurement
        .clone()
        .or_else(|| measurements.first().map(|m| m.0.clone()));
    for (n, poi, pars) in &measurements {
        let mark = if Some(n) == selected.as_ref() {
            "(*) "
        } else {
            ""
        };
        let pars = if pars.is_empty() {
            "(none)".to_string()
        } else {
            pars.join(",")
        };
        t += &format!("{:>w$}  {poi:<24}{pars}\n", format!("{mark}{n}"));
    }
    match &a.model.output_file {
        Some(path) => std::fs::write(path, t).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        }),
        None => {
            print!("{t}");
            Ok(())
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Cls(a) => cmd_cls(&a),
        Command::Significance(a) => cmd_significance(&a),
        Command::Fit(a) => cmd_fit(&a),
        Command::UpperLimit(a) => cmd_upper_limit(&a),
        Command::Toys(a) => cmd_toys(&a),
        Command::Inspect(a) => cmd_inspect(&a),
        Command::Patchset(a) => cmd_patchset(&a),
        Command::BandwidthStudy(a) => anagrad::study::run(&a),
        Command::Train(a) => anagrad::train::run_cli(&a),
        Command::Transfer(a) => anagrad::transfer::cli::run(&a),
        Command::FiducialCuts(a) => anagrad::fiducial::run_cli(&a),
    }
}

fn main() -> ExitCode {
    anagrad::train::keep_freed_memory();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
