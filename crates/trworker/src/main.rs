//! `trworker`: parse the command line, read `.env`, run.

use clap::Parser;

/// mimalloc rather than glibc's allocator: with 100,000 workers in memory, glibc's free-chunk coalescing made
/// each routing decision several times slower than with 1,000 (see docs/PERFORMANCE.md); mimalloc keeps the
/// cost flat. Built without transparent huge pages (`no_thp` in the workspace manifest), for latency: see there.
/// On a machine whose THP setting is `always` rather than `madvise`, `MIMALLOC_ALLOW_THP=0` turns them off.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Before any thread exists: `.env` fills the environment, then clap reads it.
    if let Err(e) = trworker::config::load_dotenv(std::path::Path::new(".env")) {
        eprintln!("trworker: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let cli = trworker::cli::Cli::parse();
    trworker::obs::log::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("trworker: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(trworker::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trworker: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
