//! Logs: one `tracing` subscriber for the whole process, human-readable by default and JSON
//! lines on request (`[log] format = "json"` or `--log-format json`), always to stderr.
//!
//! The filter comes from `RUST_LOG` when it is set (the usual tracing convention, handy when
//! debugging), else from the config's `[log] level`.

use std::io::IsTerminal;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Compact, human-readable lines (colored when stderr is a terminal).
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    /// The name as written in the config file and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoggingError {
    /// The filter (from `RUST_LOG` or the config's `log.level`) is not a valid directive list.
    #[error("{origin}: invalid log filter {directive:?}: {message}")]
    Filter {
        /// Where the filter came from: `RUST_LOG` or `log.level`.
        origin: &'static str,
        /// The filter as given.
        directive: String,
        /// What was wrong with it.
        message: String,
    },
    /// A global subscriber is already installed (e.g. `init` was called twice).
    #[error("logging is already initialised: {0}")]
    AlreadyInitialised(String),
}

/// The level names a bare directive may be (`info`, not `verbose`).
pub const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Checks a `[log] level` value: a comma-separated list of EnvFilter directives, where a
/// directive without `=` must be a level name.
///
/// EnvFilter itself reads a bare word such as `verbose` as a *target* name, which silently
/// turns off every other log line; an administrator almost always meant a level, so this
/// refuses it and says what is accepted.
pub fn check_level(level: &str) -> Result<(), String> {
    if level.trim().is_empty() {
        return Err(format!(
            "expected a level ({}) or directives such as \"info,switchboard=debug\", found an empty string",
            LEVELS.join(", ")
        ));
    }
    for directive in level.split(',').map(str::trim) {
        let bare = !directive.contains('=') && !directive.contains('[');
        if bare && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "{directive:?} is not a level; expected one of {} or `target=level` (e.g. \"info,switchboard=debug\")",
                LEVELS.join(", ")
            ));
        }
    }
    EnvFilter::builder().parse(level).map(|_| ()).map_err(|e| {
        format!("expected EnvFilter directives such as \"info,switchboard=debug\": {e}")
    })
}

/// Installs the global subscriber: `RUST_LOG` if set, else `level`, formatted as `format`, to
/// stderr. Calling it a second time returns [`LoggingError::AlreadyInitialised`].
pub fn init(format: LogFormat, level: &str) -> Result<(), LoggingError> {
    let (origin, directive) = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => ("RUST_LOG", value),
        _ => ("log.level", level.to_owned()),
    };
    let filter = EnvFilter::builder()
        .parse(&directive)
        .map_err(|e| LoggingError::Filter {
            origin,
            directive: directive.clone(),
            message: e.to_string(),
        })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Human => builder
            .compact()
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
    result.map_err(|e| LoggingError::AlreadyInitialised(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives_are_accepted() {
        for ok in [
            "info",
            "debug",
            "WARN",
            "info,switchboard=debug",
            "switchboard::routing=trace",
        ] {
            assert_eq!(check_level(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn bare_words_that_are_not_levels_are_refused() {
        let err = check_level("verbose").unwrap_err();
        assert!(err.contains("\"verbose\" is not a level"), "{err}");
        assert!(check_level("").is_err());
        assert!(check_level("switchboard=loud").is_err());
    }
}
