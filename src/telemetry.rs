//! Logging: `tracing` to stdout, level from `WAHA_LOG_LEVEL`, format from `WAHA_LOG_FORMAT`.
//!
//! Called once by `main` before anything else logs; tests install nothing unless
//! `TEST_LOG` is set.

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::{Config, LogFormat};

/// Installs the global subscriber (a second call is a no-op).
pub fn init(config: &Config) {
    // Our crate at the configured level; noisy dependencies one step quieter.
    let filter = EnvFilter::try_from_env("WHARF_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "warn,wharf={lvl},actix_server=info,mongodb=warn",
            lvl = config.log_level
        ))
    });
    // Colours only on a terminal, and never with NO_COLOR (https://no-color.org): a log
    // file or `docker logs` must not get raw escape sequences.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
