//! The `belong` binary: parse arguments, run, print the whole error chain, pick an exit code
//! (0 done, 1 failed and nothing was changed, 2 bad usage, 3 done but some rows were rejected).

mod cli;

/// mimalloc: imports allocate millions of small strings, and glibc's allocator showed up as a
/// quarter of a million-row import's profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

/// A service holds its state for days and is judged by its resident memory: return freed pages
/// to the system at once, and in 4 KiB pages. mimalloc's defaults (a 10 ms purge delay and
/// transparent huge pages) kept ~100 MB more resident at county scale (idle 645 → 590 MiB, high
/// water 716 → 623 MiB, measured). An option set in the environment (`MIMALLOC_ALLOW_THP`,
/// `MIMALLOC_PURGE_DELAY`) wins.
fn tune_allocator_for_serving() {
    use libmimalloc_sys::{mi_option_set, mi_option_t};
    // `mi_option_e` of the mimalloc (v3) that libmimalloc-sys 0.1.49 builds; the crate does not
    // export these two. Check them against `c_src/mimalloc/v3/include/mimalloc.h` on an upgrade.
    const PURGE_DELAY: mi_option_t = 15;
    const ALLOW_THP: mi_option_t = 43;
    let set = |name: &str, option: mi_option_t, value| {
        if std::env::var_os(name).is_none() {
            // SAFETY: setting an option is a plain store into mimalloc's option table, valid at
            // any time; it takes effect on the allocator's next OS allocation or purge.
            unsafe { mi_option_set(option, value) };
        }
    };
    set("MIMALLOC_ALLOW_THP", ALLOW_THP, 0);
    // mimalloc reserved its first arena (and advised huge pages on it) before `main`: the
    // option alone covers only later ones. The process-wide switch covers every mapping
    // faulted in from here on.
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and changes only how the
        // kernel backs this process's future page faults.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
    set("MIMALLOC_PURGE_DELAY", PURGE_DELAY, 0);
}

use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BELONG_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = cli::args::Cli::parse();
    if matches!(args.command, cli::args::Command::Serve(_)) {
        tune_allocator_for_serving();
    }
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
