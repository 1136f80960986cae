//! Errors as kubectl prints them: `Error from server (Reason): message` for the API's answers,
//! `error: message` for everything else; both exit 1.

use std::fmt;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server said no; `context` is kubectl's "error when creating \"file\"" prefix.
    #[error("{}", server_text(.status, .context.as_deref()))]
    Server {
        status: Box<kube::core::Status>,
        context: Option<String>,
    },
    /// Anything else: a bad argument, an unreadable file, an unreachable server.
    #[error("error: {0}")]
    Other(String),
    /// Already printed (for example one line per failed object); only the exit code is left.
    #[error("")]
    Reported(i32),
}

impl Error {
    pub fn other(message: impl fmt::Display) -> Self {
        Error::Other(message.to_string())
    }

    /// The server's refusal, with kubectl's prefix for the operation and file.
    pub fn with_context(self, context: impl Into<String>) -> Self {
        match self {
            Error::Server { status, .. } => Error::Server {
                status,
                context: Some(context.into()),
            },
            other => other,
        }
    }

    pub fn print(&self) {
        match self {
            Error::Reported(_) => {}
            other => eprintln!("{other}"),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Reported(code) => *code,
            _ => 1,
        }
    }

    /// Whether the server answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Server { status, .. } if status.code == 404)
    }
}

fn server_text(status: &kube::core::Status, context: Option<&str>) -> String {
    let reason = if status.reason.is_empty() {
        "Unknown"
    } else {
        &status.reason
    };
    match context {
        Some(context) => format!(
            "Error from server ({reason}): {context}: {}",
            status.message
        ),
        None => format!("Error from server ({reason}): {}", status.message),
    }
}

impl From<kube::Error> for Error {
    fn from(err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) => Error::Server {
                status,
                context: None,
            },
            other => Error::Other(other.to_string()),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::Other(err.to_string())
    }
}
