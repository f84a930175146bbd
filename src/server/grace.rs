//! The end of the server: on shutdown it stops accepting, running streams
//! get the grace period to finish, then those left are cancelled.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::flight::admission::QueryGovernor;
use crate::server::error::ServeError;

/// How long cancelled streams get to send their status and close their
/// connections once the grace is over, before the server stops anyway.
const AFTER_GRACE: Duration = Duration::from_secs(2);

/// Resolves when the server it was given to should stop accepting (or
/// when [`serve_with_grace`] is gone).
#[derive(Debug)]
pub struct ShutdownSignal(oneshot::Receiver<()>);

impl Future for ShutdownSignal {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// Serves with a graceful end: `serve` gets a signal that resolves when
/// `shutdown` does (the server then stops accepting and waits for its
/// connections). Endless streams (change feeds) end at once; the others
/// get `grace` to finish; then `governor`
/// cancels those left (they end with UNAVAILABLE), and the server gets a
/// moment to send that before it stops anyway.
pub async fn serve_with_grace<S>(
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    governor: &QueryGovernor,
    serve: impl FnOnce(ShutdownSignal) -> S,
) -> Result<(), ServeError>
where
    S: Future<Output = Result<(), ServeError>>,
{
    let (signal_tx, signal) = oneshot::channel::<()>();
    let serving = serve(ShutdownSignal(signal));
    tokio::pin!(serving, shutdown);
    tokio::select! {
        result = &mut serving => return result,
        () = &mut shutdown => {}
    }
    tracing::info!(
        running = governor.running(),
        ?grace,
        "shutting down: no new connections; running queries may finish"
    );
    let _ = signal_tx.send(());
    // A change feed never finishes: it ends now, not after the grace.
    governor.drain();
    if let Ok(result) = tokio::time::timeout(grace, &mut serving).await {
        return result;
    }
    tracing::warn!(
        running = governor.running(),
        "shutdown grace over: cancelling the queries still running"
    );
    governor.cancel_all();
    match tokio::time::timeout(AFTER_GRACE, &mut serving).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!("connections still open after the grace; closing them");
            Ok(())
        }
    }
}
