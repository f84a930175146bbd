//! The `/metrics` listener: Prometheus's text format on a plain-HTTP port
//! of its own (`--metrics-listen`).

use std::net::SocketAddr;

use tonic::codegen::http;

use crate::obs::metrics::render;

/// The content type of the text exposition format `prometheus-client`
/// writes (OpenMetrics, which Prometheus reads).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics listener; dropping it stops it.
#[derive(Debug)]
pub struct MetricsListener {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsListener {
    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for MetricsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `GET /metrics` on `address` (no listener when `None`), and prints
/// `sagemaker-flight metrics on http://ADDR/metrics` on stdout once it
/// accepts connections (with port 0, that is how to learn the port).
pub async fn listen(address: Option<SocketAddr>) -> std::io::Result<Option<MetricsListener>> {
    let Some(address) = address else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(address).await?;
    let address = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async { ([(http::header::CONTENT_TYPE, CONTENT_TYPE)], render()) }),
    );
    println!("sagemaker-flight metrics on http://{address}/metrics");
    tracing::info!(%address, "metrics listening");
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "the metrics listener stopped");
        }
    });
    Ok(Some(MetricsListener { address, task }))
}
