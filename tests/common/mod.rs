//! The test harness: starts the real servers through `scripts/testenv` (the
//! same script CI and the demo use), runs the daemon binary, writes SQL as a
//! separate user, and reads topics back with kafka-python, an independent
//! client. Tests never skip when a server is missing: they start it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn testenv(args: &[&str]) -> String {
    let out = Command::new(root().join("scripts/testenv"))
        .args(args)
        .output()
        .expect("run scripts/testenv");
    assert!(
        out.status.success(),
        "scripts/testenv {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Installs (once per test process) and starts the shared MariaDB :3307 and
/// Tansu :9092.
pub fn servers() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        testenv(&["start"]);
    });
}

pub const BROKER: &str = "127.0.0.1:9092";
pub const MYSQL_PORT: u16 = 3307;

/// A topic or database name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{}", std::process::id(), n % 1_000_000_000_000)
}

pub fn python() -> PathBuf {
    root().join("target/testenv/venv/bin/python")
}

pub fn run_python(script: &str, args: &[&str]) -> Output {
    Command::new(python())
        .arg(root().join("tests").join(script))
        .args(args)
        .output()
        .expect("run python")
}

pub fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
