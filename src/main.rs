//! The `belong` binary: parse arguments, run, print the whole error chain, pick an exit code
//! (0 done, 1 failed and nothing was changed, 2 bad usage, 3 done but some rows were rejected).

mod cli;

/// mimalloc: imports allocate millions of small strings, and glibc's allocator showed up as a
/// quarter of a million-row import's profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BELONG_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = cli::args::Cli::parse();
    if let Err(e) = args.check() {
        // Exit 2 with clap's usage line, like any other bad usage.
        <cli::args::Cli as clap::CommandFactory>::command().error(clap::error::ErrorKind::ArgumentConflict, e).exit();
    }
    match cli::run(args) {
        Ok(cli::Outcome::Done) => ExitCode::SUCCESS,
        Ok(cli::Outcome::Partial) => ExitCode::from(3),
        Err(err) => {
            // A closed pipe (`belong export blocks | head`) is not an error worth a message.
            if err.chain().any(is_broken_pipe) {
                return ExitCode::SUCCESS;
            }
            // Messages may quote the input: each line is cut short (a `.prj` of NULs is not
            // printed whole).
            let clip = |text: String| belong::core::text::clip_lines(&text, belong::core::text::MESSAGE_LINE);
            eprintln!("error: {}", clip(err.to_string()));
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {}", clip(cause.to_string()));
            }
            ExitCode::FAILURE
        }
    }
}

/// Whether an error in the chain is a closed stdout pipe, whichever writer reported it.
fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return io.kind() == BrokenPipe;
    }
    if let Some(json) = e.downcast_ref::<serde_json::Error>() {
        return json.io_error_kind() == Some(BrokenPipe);
    }
    if let Some(csv) = e.downcast_ref::<csv::Error>() {
        return matches!(csv.kind(), csv::ErrorKind::Io(io) if io.kind() == BrokenPipe);
    }
    false
}
