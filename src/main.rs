//! The `nsl` command: parses the command line and hands over to the subcommands in `cli/`.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
