//! The `saker` command-line client.
//!
//! Layout: `args` (syntax), `conn` (reaching nodes: unix socket, mTLS, DNS fan-out),
//! `fanout` (concurrent calls and pure merge functions), `commands` (one function per
//! subcommand: calls, then rendering), `render`/`answer`/`table` (pure text rendering),
//! `escape` (the one terminal-escaping function, in the library: `sakerd events` uses it too), `exit` (exit codes), `timefmt`.

mod answer;
mod args;
mod commands;
mod conn;
use saker::escape;
mod exit;
mod fanout;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod mock_tests;
mod render;
mod table;
mod timefmt;

use std::process::ExitCode;

use clap::Parser;

use self::exit::Exit;

/// Parses the command line, runs the command, returns its exit code.
pub fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // --help and --version print to stdout and succeed; every other parse error
            // is a usage error (clap's own default would be 2, our "connection" code).
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            }
            .into();
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("saker: cannot start the async runtime: {e}");
            return Exit::Usage.into();
        }
    };
    rt.block_on(commands::run(cli)).into()
}
