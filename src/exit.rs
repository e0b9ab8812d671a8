//! Exit codes.

/// 0 success, 1 a user-caused failure (bad input, lint errors), 2 unexpected or not
/// implemented, 3 a policy block (`kt chat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success = 0,
    Failure = 1,
    Error = 2,
    Blocked = 3,
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        std::process::ExitCode::from(s as u8)
    }
}
