//! binlog2kafka's command line: parse arguments, load the config, run or
//! check, and turn any error into one line and a non-zero exit.

use std::path::PathBuf;
use std::process::ExitCode;

use binlog2kafka::cli;

/// The static (musl) build allocates through dlmalloc: musl's malloc made
/// the allocation-heavy decode path 3.9x slower than the glibc build.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;
use binlog2kafka::config::{self, Config};

const USAGE: &str = "\
binlog2kafka: stream MySQL/MariaDB binlog row changes to Kafka as JSON

usage: binlog2kafka [run|check|reset] [--config FILE]
       binlog2kafka pipeline put FILE | delete NAME | list | pause NAME | resume NAME [--config FILE]
       binlog2kafka fleet status [--config FILE]
       binlog2kafka snapshot [--config FILE] [--where 'COND'] DB.TABLE...
       binlog2kafka replay [--stdout] [--schema-from] [--config FILE] BINLOG...
       binlog2kafka --help | --version

commands:
  run      stream changes until SIGTERM/SIGINT (the default)
  check    validate the config and the servers' settings and privileges,
           print what was found, exit 0 when all is well, 1 otherwise
  reset    remove the pipeline's checkpoint (pipeline.name in
           kafka.commit_topic), so the next start begins at start.position;
           refused while a daemon holds the pipeline
  snapshot ask the running pipeline (through kafka.commit_topic) to snapshot
           these tables now, without stopping it and without writing to
           MySQL; prints when the daemon has taken the request (waits up to
           60 s; a pipeline that is down takes it when it next starts)
  pipeline (with fleet.name) manage the fleet's pipeline definitions:
           `put FILE` checks the pipeline's .properties file as `check`
           does and writes it (a new one gets a mysql.server_id from
           fleet.server_id_range), `delete NAME` (its checkpoint stays),
           `list`, `pause NAME`, `resume NAME`; the hosts of the fleet
           follow within fleet.heartbeat_interval_ms (docs/fleet.md)
  fleet status  (with fleet.name) every pipeline of the fleet: its host,
           state, lag and rate, as the hosts last wrote them to
           fleet.status_topic (every 10 s)
  replay   decode binlog files (as the server wrote them, or backups) and
           write the same messages to the data topic (kafka.topic), or as
           JSON lines to stdout with --stdout; a truncated or corrupt file
           ends with an error naming it and the offset

options:
  -c, --config FILE   a .properties file (key = value, # comments)
  -h, --help          this text
  -V, --version       the version
  --where COND        (snapshot) only the rows matching COND: a boolean expression over
                      the table's own columns (=, <, IN, BETWEEN, LIKE, IS NULL, AND/OR/NOT)
  --stdout            (replay) write JSON lines to standard output, not Kafka
  --schema-from       (replay) the tables' definitions as the configured
                      server has them now; the files' DDL is followed from
                      there, and every table map checked
  --schema-file FILE  (replay) the definitions from a file of CREATE TABLE
                      statements (mysqldump --no-data output; empty when the
                      files create their tables); without either, column
                      names the files lack stay positional: @1, @2, ...

Every key can be set by an environment variable instead: B2K_ and the key in
capitals with dots as underscores (mysql.host -> B2K_MYSQL_HOST), which wins
over the file. Log verbosity: RUST_LOG=debug|info|warn|error (default info).

config keys:
";

enum Command {
    Run,
    Check,
    Reset,
    Replay {
        files: Vec<PathBuf>,
        stdout: bool,
        schema_from: bool,
        schema_file: Option<PathBuf>,
    },
    Snapshot {
        tables: Vec<String>,
        condition: Option<String>,
    },
    Pipeline(Option<cli::PipelineCommand>),
}

fn parse_args() -> Result<(Command, Option<PathBuf>), String> {
    let mut cmd = None;
    let mut config = None;
    let (mut files, mut stdout, mut schema_from) = (Vec::new(), false, false);
    let mut schema_file = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        let a = a.to_string_lossy().into_owned();
        match a.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}{}", config::keys_help());
                std::process::exit(0);
            }
            "-V" | "--version" => {
                println!("binlog2kafka {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "-c" | "--config" => {
                let v = args.next().ok_or("--config needs a file name")?;
                config = Some(PathBuf::from(v));
            }
            s if s.starts_with("--config=") => {
                config = Some(PathBuf::from(&s["--config=".len()..]))
            }
            "run" if cmd.is_none() => cmd = Some(Command::Run),
            "check" if cmd.is_none() => cmd = Some(Command::Check),
            "reset" if cmd.is_none() => cmd = Some(Command::Reset),
            "replay" if cmd.is_none() => {
                cmd = Some(Command::Replay {
                    files: vec![],
                    stdout: false,
                    schema_from: false,
                    schema_file: None,
                })
            }
            "snapshot" if cmd.is_none() => {
                cmd = Some(Command::Snapshot {
                    tables: vec![],
                    condition: None,
                })
            }
            "pipeline" if cmd.is_none() => cmd = Some(Command::Pipeline(None)),
            "fleet" if cmd.is_none() => match args.next().map(|a| a.to_string_lossy().into_owned())
            {
                Some(s) if s == "status" => {
                    cmd = Some(Command::Pipeline(Some(cli::PipelineCommand::Status)))
                }
                _ => return Err("fleet needs status; see binlog2kafka --help".into()),
            },
            verb if matches!(cmd, Some(Command::Pipeline(None))) => {
                let mut arg = |what: &str| {
                    args.next()
                        .map(|a| a.to_string_lossy().into_owned())
                        .ok_or(format!(
                            "pipeline {verb} needs {what}; see binlog2kafka --help"
                        ))
                };
                let sub = match verb {
                    "put" => cli::PipelineCommand::Put(PathBuf::from(arg("a file")?)),
                    "delete" => cli::PipelineCommand::Delete(arg("a pipeline name")?),
                    "pause" => cli::PipelineCommand::Pause(arg("a pipeline name")?),
                    "resume" => cli::PipelineCommand::Resume(arg("a pipeline name")?),
                    "list" => cli::PipelineCommand::List,
                    other => {
                        return Err(format!(
                            "unknown pipeline command `{other}`: put, delete, list, pause or resume"
                        ))
                    }
                };
                cmd = Some(Command::Pipeline(Some(sub)));
            }
            "--where" if matches!(cmd, Some(Command::Snapshot { .. })) => {
                let v = args.next().ok_or("--where needs an SQL condition")?;
                if let Some(Command::Snapshot { condition, .. }) = cmd.as_mut() {
                    *condition = Some(v.to_string_lossy().into_owned());
                }
            }
            t if matches!(cmd, Some(Command::Snapshot { .. })) && !t.starts_with('-') => {
                if !t.contains('.') {
                    return Err(format!("`{t}` is not DB.TABLE; see binlog2kafka --help"));
                }
                if let Some(Command::Snapshot { tables, .. }) = cmd.as_mut() {
                    tables.push(t.to_string());
                }
            }
            "--stdout" if matches!(cmd, Some(Command::Replay { .. })) => stdout = true,
            "--schema-from" if matches!(cmd, Some(Command::Replay { .. })) => schema_from = true,
            "--schema-file" if matches!(cmd, Some(Command::Replay { .. })) => {
                let v = args.next().ok_or("--schema-file needs a file name")?;
                schema_file = Some(PathBuf::from(v));
            }
            f if matches!(cmd, Some(Command::Replay { .. })) && !f.starts_with('-') => {
                files.push(PathBuf::from(f))
            }
            other => {
                return Err(format!(
                    "unexpected argument `{other}`; see binlog2kafka --help"
                ))
            }
        }
    }
    let cmd = match cmd.unwrap_or(Command::Run) {
        Command::Replay { .. } => {
            if files.is_empty() {
                return Err(
                    "replay needs at least one binlog file; see binlog2kafka --help".into(),
                );
            }
            Command::Replay {
                files,
                stdout,
                schema_from,
                schema_file,
            }
        }
        Command::Pipeline(None) => {
            return Err(
                "pipeline needs put FILE, delete NAME, list, pause NAME or resume NAME".into(),
            )
        }
        Command::Snapshot { tables, .. } if tables.is_empty() => {
            return Err("snapshot needs at least one DB.TABLE; see binlog2kafka --help".into())
        }
        other => other,
    };
    Ok((cmd, config))
}

/// Logs to stderr at RUST_LOG's level (default info): as text, or with
/// `log.format=json` one JSON object per line for log shippers.
fn init_logging(json: bool) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    b.format_target(false);
    let context = binlog2kafka::pipeline::handle::context;
    if !json {
        // As env_logger's own lines, with the pipeline a line is about in a
        // fleet (where one process runs many).
        b.format(move |buf, record| {
            use std::io::Write;
            let level = record.level();
            let style = buf.default_level_style(level);
            write!(buf, "[{} {style}{level:<5}{style:#}] ", buf.timestamp())?;
            if let Some(p) = context() {
                write!(buf, "[{p}] ")?;
            }
            writeln!(buf, "{}", record.args())
        });
    }
    if json {
        b.format(move |buf, record| {
            use std::io::Write;
            let line = serde_json::json!({
                "ts": buf.timestamp_millis().to_string(),
                "level": record.level().as_str(),
                "thread": std::thread::current().name().unwrap_or("main"),
                "pipeline": context().as_deref(),
                "msg": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    }
    b.init();
}

fn main() -> ExitCode {
    let fail = |msg: &dyn std::fmt::Display| {
        eprintln!("binlog2kafka: error: {msg}");
        ExitCode::FAILURE
    };
    let (cmd, path) = match parse_args() {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let cfg = match Config::load(path.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    init_logging(cfg.log_json);
    for w in &cfg.warnings {
        log::warn!("{w}");
    }
    // The host's file: in a fleet, the first layer of every pipeline's
    // configuration.
    let layers: Vec<(String, String)> = path
        .as_deref()
        .and_then(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|t| (p.display().to_string(), t))
        })
        .into_iter()
        .collect();
    match cmd {
        Command::Pipeline(sub) => {
            match cli::pipeline_command(&cfg, &layers, sub.expect("checked by parse_args")) {
                Ok(said) => {
                    println!("{said}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Run if cfg.fleet.is_some() => {
            let signals = match cli::Signals::install() {
                Ok(s) => s,
                Err(e) => return fail(&format!("cannot install signal handlers: {e}")),
            };
            match cli::run_fleet(cfg, layers, signals) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Check => {
            let report = cli::check(&cfg);
            for l in &report.lines {
                println!("{l}");
            }
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Snapshot { tables, condition } => {
            match cli::request_snapshot(
                &cfg,
                &tables,
                condition,
                std::time::Duration::from_secs(60),
            ) {
                Ok(said) => {
                    println!("{said}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Reset => match cli::reset(&cfg) {
            Ok(said) => {
                println!("{said}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Replay {
            files,
            stdout,
            schema_from,
            schema_file,
        } => {
            let paths: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
            let settings = match cli::replay_settings(&cfg, schema_from, schema_file.as_deref()) {
                Ok(s) => s,
                Err(e) => return fail(&e),
            };
            if !stdout {
                return match cli::replay_to_kafka(&cfg, &settings, &paths, schema_from) {
                    Ok(s) => {
                        log::info!(
                            "replayed {} file(s) into {}: {} events, {} rows",
                            s.files,
                            cfg.topic,
                            s.events,
                            s.rows
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(&e),
                };
            }
            // A damaged file is reported as one error line; a decoder panic
            // it provokes is caught and reported there, not printed raw.
            std::panic::set_hook(Box::new(|_| {}));
            let out = std::io::stdout();
            // Replay writes whole lines in blocks of about 64 KiB itself;
            // stdout's line buffering hands such a block straight to the
            // system, where a BufWriter would copy it once more.
            let mut out = out.lock();
            match binlog2kafka::replay::replay_files(&settings, &paths, schema_from, &mut out) {
                Ok(s) => {
                    log::info!(
                        "replayed {} file(s): {} events, {} rows",
                        s.files,
                        s.events,
                        s.rows
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    use std::io::Write;
                    out.flush().ok();
                    fail(&e)
                }
            }
        }
        Command::Run => {
            let signals = match cli::Signals::install() {
                Ok(s) => s,
                Err(e) => return fail(&format!("cannot install signal handlers: {e}")),
            };
            match cli::run(cfg, signals) {
                Ok(summary) => {
                    log::info!(
                        "stopped cleanly: {} rows sent; checkpoint {}",
                        summary.rows,
                        summary
                            .last_checkpoint
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "unchanged".into())
                    );
                    ExitCode::SUCCESS
                }
                Err(cli::AppError::Interrupted) => {
                    log::info!("stopped by a signal during start-up; nothing was claimed or sent");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
    }
}
