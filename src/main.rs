//! The `kt` binary: everything lives in the library; this only maps the result to an exit code.
fn main() -> std::process::ExitCode {
    kt::run(std::env::args_os())
}
