//! The `warrant` binary: parses the command line and hands over to [`warrant::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    match warrant::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the chain of causes on one line, without a backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
