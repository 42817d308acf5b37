//! The provisioner as its own process, for clusters. Configuration as for
//! `dirsync serve`: `--config FILE` and `DIRSYNC__SECTION__KEY` variables.

use std::process::ExitCode;

/// mimalloc, as in `dirsync` (its `main.rs` says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    dirsync_runtime::process::run_service(
        "provisioner",
        |config| config.grpc.listen,
        |config, listener| async move {
            dirsync_provisioner::run(&config, listener, dirsync_runtime::shutdown_signal()).await
        },
    )
}
