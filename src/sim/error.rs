//! What can go wrong when a scenario is loaded or run.

use std::fmt;

use crate::model::Timestamp;
use crate::routing::RouterError;

/// A scenario that could not be read, parsed, validated or run. Every variant names the file;
/// the ones about content name the field (`queues[2].arrivals[0].per_hour`) and, where the
/// file has it, the line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The scenario file could not be read.
    #[error("{file}: cannot read the scenario: {source}")]
    Read {
        /// The file, as given.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{file}:{line}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line of the error.
        line: usize,
        /// What the TOML parser said.
        message: String,
    },
    /// A key is unknown, a value has the wrong type or is out of range, or a name refers to
    /// nothing.
    #[error("{}", Located { file, line: *line, field, message })]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line of the field, when it can be found in the file.
        line: Option<usize>,
        /// Dotted path of the field, e.g. `queues[2].arrivals[0].per_hour`.
        field: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// The router refused an input of the simulator: a bug in one of them, never the scenario.
    #[error("the router refused {call} at {at} of the simulated day: {source}")]
    Router {
        /// The router call.
        call: &'static str,
        /// Simulated time of the call (µs since 00:00).
        at: Timestamp,
        /// What the router said.
        #[source]
        source: RouterError,
    },
}

impl SimError {
    /// The field path, for errors about a field.
    pub fn field(&self) -> Option<&str> {
        match self {
            SimError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// `file:line: field: message`, or `file: field: message` without a line.
struct Located<'a> {
    file: &'a str,
    line: Option<usize>,
    field: &'a str,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: ", self.file)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if self.field.is_empty() {
            f.write_str(self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}
