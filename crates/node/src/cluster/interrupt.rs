//! Ctrl-C for everything that runs a local cluster (`tenure demo`, the chaos runner, the
//! benchmark): SIGINT and SIGTERM set a flag instead of killing the process, so that the run
//! stops at its next check and its cleanup (the cluster, and whatever else the run started)
//! runs as on any other exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

/// A flag set by SIGINT or SIGTERM. Installing the handler replaces the default action (exit),
/// so that Ctrl-C runs the cleanup instead of orphaning the cluster. A second signal after the
/// flag is set exits at once with status 130 (the parent-death signals of the nodes then stop
/// the cluster; what else an interrupted run leaves behind, such as network namespaces, the
/// next run removes).
pub fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let (ready_sender, ready) = mpsc::channel();
    let setter = flag.clone();
    let spawned = thread::Builder::new()
        .name("interrupt".to_string())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                let _ = ready_sender.send(());
                return;
            };
            runtime.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let terminate = signal(SignalKind::terminate());
                let interrupt = signal(SignalKind::interrupt());
                let _ = ready_sender.send(());
                let (Ok(mut terminate), Ok(mut interrupt)) = (terminate, interrupt) else {
                    return;
                };
                // Two signals at most: the first asks for a clean stop, the second insists.
                for _ in 0..2 {
                    tokio::select! {
                        _ = terminate.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                    if setter.swap(true, Ordering::SeqCst) {
                        std::process::exit(130);
                    }
                    eprintln!("interrupted: cleaning up (a second Ctrl-C exits at once)");
                }
            });
        });
    if spawned.is_ok() {
        // Wait until the handlers are installed, so an early Ctrl-C is not lost.
        let _ = ready.recv_timeout(Duration::from_secs(5));
    }
    flag
}
