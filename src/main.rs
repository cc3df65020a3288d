//! The `cnpg-ops` binary: parse, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;

use cnpg_ops::cli::Cli;
use cnpg_ops::exit;
use cnpg_ops::output::Printer;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::new(cli.global.output, cli.global.color, cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            printer.error(&format!("cannot start the async runtime: {e}"), None);
            return ExitCode::from(exit::USAGE);
        }
    };
    let code = runtime.block_on(async {
        tokio::select! {
            r = cnpg_ops::commands::run(cli, &printer) => match r {
                Ok(code) => code,
                Err(f) => {
                    printer.error(&f.message, f.hint.as_deref());
                    f.code
                }
            },
            _ = tokio::signal::ctrl_c() => {
                printer.error("interrupted", None);
                exit::INTERRUPTED
            }
        }
    });
    ExitCode::from(code)
}
