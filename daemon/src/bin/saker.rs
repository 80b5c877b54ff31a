//! saker: the command-line client of sakerd's gRPC API (see `src/cli/`).

#[path = "../cli/mod.rs"]
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
