//! The operator subcommands of the `wharf` binary: `migrate` (every session from one
//! store to another), `export` and `import` (one session to and from an encrypted file).
//!
//! Owns: argument parsing, opening the stores they name (the server's environment picks
//! the default, as for the server), the passphrase, progress bars (on stderr, only when it
//! is a terminal) and exit codes (0 done, 1 failed, 2 bad usage). Called by `main.rs`
//! before any server code; each command runs once in its own process and returns.
//! [`dump`] is the record stream they share, [`migrate`] and [`backup`] the commands.

pub mod backup;
pub mod dump;
pub mod migrate;

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::config::Config;
use crate::store::{Namespaces, Store};

/// Whether `args[1]` is one of ours.
pub fn is_command(arg: Option<&str>) -> bool {
    matches!(arg, Some("migrate" | "export" | "import"))
}

/// Runs `wharf <command> …` (`args` without the program name) and returns the exit code.
pub async fn run(args: Vec<String>) -> i32 {
    let Some((command, rest)) = args.split_first() else {
        return 2;
    };
    let parsed = match Args::parse(rest) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wharf {command}: {e}\n\n{USAGE}");
            return 2;
        }
    };
    let config = match Config::from_process_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wharf: {e}");
            return 2;
        }
    };
    let result = match command.as_str() {
        "migrate" => migrate::run(&config, &parsed).await,
        "export" => backup::export(&config, &parsed).await,
        "import" => backup::import(&config, &parsed).await,
        _ => Err(Failure::Usage(format!("unknown command {command:?}"))),
    };
    match result {
        Ok(()) => 0,
        Err(Failure::Usage(e)) => {
            eprintln!("wharf {command}: {e}\n\n{USAGE}");
            2
        }
        Err(Failure::Failed(e)) => {
            eprintln!("wharf {command}: {e:#}");
            1
        }
    }
}

/// How the subcommands are called.
pub const USAGE: &str = "\
usage:
  wharf migrate --to <mongodb://…|embedded[:DIR]> [--from <mongodb://…|embedded[:DIR]>] [--session NAME]…
  wharf export SESSION --out FILE [--passphrase-file FILE]
  wharf import FILE [--as NAME] [--replace] [--passphrase-file FILE]
The passphrase comes from WHARF_BACKUP_PASSPHRASE or the first line of --passphrase-file.
Stop the server that uses the source store first.";

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The work failed (exit 1).
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<crate::store::Error> for Failure {
    fn from(e: crate::store::Error) -> Self {
        Self::Failed(e.into())
    }
}

/// Parsed arguments: positionals and `--flag value` options.
#[derive(Debug, Default)]
pub struct Args {
    /// Positional arguments in order.
    pub positional: Vec<String>,
    /// `--to`.
    pub to: Option<String>,
    /// `--from`.
    pub from: Option<String>,
    /// `--session`, repeatable.
    pub sessions: Vec<String>,
    /// `--out`.
    pub out: Option<PathBuf>,
    /// `--as`.
    pub rename: Option<String>,
    /// `--replace`.
    pub replace: bool,
    /// `--passphrase-file`.
    pub passphrase_file: Option<PathBuf>,
}

impl Args {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut out = Self::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (a.as_str(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag {
                "--to" => out.to = Some(value()?),
                "--from" => out.from = Some(value()?),
                "--session" => out.sessions.push(value()?),
                "--out" => out.out = Some(value()?.into()),
                "--as" => out.rename = Some(value()?),
                "--passphrase-file" => out.passphrase_file = Some(value()?.into()),
                "--replace" => out.replace = true,
                "--passphrase" => {
                    return Err(
                        "no --passphrase: a command line is visible to every user (ps); use \
                         WHARF_BACKUP_PASSPHRASE or --passphrase-file"
                            .into(),
                    );
                }
                f if f.starts_with("--") => return Err(format!("unknown option {f}")),
                _ => out.positional.push(a.clone()),
            }
        }
        Ok(out)
    }
}

/// A store named on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreSpec {
    /// SQLite under this base dir.
    Embedded(PathBuf),
    /// MongoDB at this URL.
    Mongo(String),
}

impl StoreSpec {
    /// `embedded` (the configured `WAHA_LOCAL_STORE_BASE_DIR`), `embedded:DIR`, or a
    /// `mongodb://` / `mongodb+srv://` URL.
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(s: &str, config: &Config) -> Result<Self, Failure> {
        if s == "embedded" {
            return Ok(Self::Embedded(config.local_store_base_dir.clone()));
        }
        if let Some(dir) = s.strip_prefix("embedded:") {
            return Ok(Self::Embedded(dir.into()));
        }
        if s.starts_with("mongodb://") || s.starts_with("mongodb+srv://") {
            return Ok(Self::Mongo(s.to_string()));
        }
        Err(Failure::Usage(format!(
            "{s:?} is not a store: use embedded, embedded:DIR or a mongodb:// URL"
        )))
    }

    /// The store the server would use with this environment.
    pub fn current(config: &Config) -> Self {
        match &config.mongo_url {
            Some(url) => Self::Mongo(url.expose().to_string()),
            None => Self::Embedded(config.local_store_base_dir.clone()),
        }
    }

    /// For messages: the dir, or the URL without its credentials.
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded(dir) => format!("embedded store at {}", dir.display()),
            Self::Mongo(url) => match url::Url::parse(url) {
                Ok(mut u) => {
                    let _ = u.set_password(None);
                    let _ = u.set_username("");
                    format!("MongoDB at {u}")
                }
                Err(_) => "MongoDB".into(),
            },
        }
    }

    /// Opens it with the configured namespaces. `must_exist`: an embedded store that is
    /// not there is an error instead of being created empty.
    ///
    /// # Errors
    /// It cannot be opened or reached.
    pub async fn open(&self, config: &Config, must_exist: bool) -> Result<Store, Failure> {
        let ns = Namespaces {
            main: config.namespace.clone(),
            session: config.session_namespace.clone(),
        };
        match self {
            Self::Embedded(dir) => {
                if must_exist && !dir.join(&ns.main).join("waha.sqlite3").exists() {
                    return Err(Failure::Failed(anyhow::anyhow!(
                        "no {} (namespace {:?})",
                        self.describe(),
                        ns.main
                    )));
                }
                Ok(Store::sqlite(dir, ns)
                    .await
                    .with_context(|| format!("cannot open the {}", self.describe()))?)
            }
            Self::Mongo(url) => Ok(Store::mongo(url, ns)
                .await
                .with_context(|| format!("cannot open the {}", self.describe()))?),
        }
    }
}

/// A progress bar on stderr, hidden when stderr is not a terminal (logs, CI).
pub fn progress(len: u64, prefix: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(prefix.to_string());
    bar
}

/// Prints a per-kind count table (and the destination's count when given).
pub fn print_counts(session: &str, src: &dump::Counts, dst: Option<&dump::Counts>) {
    for (kind, n) in src {
        match dst {
            Some(d) => {
                let m = d.get(kind).copied().unwrap_or(0);
                let mark = if m >= *n { "ok" } else { "MISMATCH" };
                println!("  {session:<20} {kind:<28} {n:>8} → {m:>8}  {mark}");
            }
            None => println!("  {session:<20} {kind:<28} {n:>8}"),
        }
    }
}
