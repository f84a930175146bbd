//! The gRPC health service (`grpc.health.v1.Health`) on the Flight port:
//! SERVING for the server as a whole (`""`) and for the Flight service
//! (`arrow.flight.protocol.FlightService`) while the server runs,
//! NOT_SERVING once shutdown starts.
//!
//! Check and Watch are tonic-health's. A Watch stream ends right after it
//! sends NOT_SERVING: the server is going away for good, and an open
//! Watch would otherwise hold its connection, and the shutdown, open until
//! the grace is over.

use arrow_flight::flight_service_server::FlightServiceServer;
use futures::stream::{BoxStream, StreamExt};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_server::{Health as HealthApi, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::{HealthReporter, HealthService};

use crate::flight::FlightServer;

/// The Flight service's name in the health service.
pub const FLIGHT_SERVICE: &str = <FlightServiceServer<FlightServer> as NamedService>::NAME;

/// The statuses the health service reports; cheap to clone.
#[derive(Clone, Debug)]
pub struct Health {
    reporter: HealthReporter,
}

impl Health {
    /// The server and the Flight service SERVING, and the gRPC service
    /// answering for them.
    pub async fn serving() -> (Health, HealthServer<EndingWatches>) {
        let reporter = HealthReporter::new();
        for service in ["", FLIGHT_SERVICE] {
            reporter
                .set_service_status(service, ServingStatus::Serving)
                .await;
        }
        let service = EndingWatches(HealthService::from_health_reporter(reporter.clone()));
        (Health { reporter }, HealthServer::new(service))
    }

    /// Both NOT_SERVING, for good: shutdown has started.
    pub async fn not_serving(&self) {
        for service in ["", FLIGHT_SERVICE] {
            self.reporter
                .set_service_status(service, ServingStatus::NotServing)
                .await;
        }
    }
}

/// tonic-health's service, with Watch streams that end after NOT_SERVING.
#[derive(Debug)]
pub struct EndingWatches(HealthService);

#[tonic::async_trait]
impl HealthApi for EndingWatches {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.0.check(request).await
    }

    type WatchStream = BoxStream<'static, Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let updates = self.0.watch(request).await?.into_inner();
        // NOT_SERVING is final: send it, then end (without waiting for
        // another update that never comes).
        let updates = futures::stream::unfold(
            (updates, false),
            |(mut updates, ended)| async move {
                if ended {
                    return None;
                }
                let update = updates.next().await?;
                let ended = matches!(&update, Ok(response) if response.status == WireStatus::NotServing as i32);
                Some((update, (updates, ended)))
            },
        );
        Ok(Response::new(updates.boxed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_path_is_flights() {
        assert_eq!(
            crate::auth::HANDSHAKE_PATH,
            format!("/{FLIGHT_SERVICE}/Handshake")
        );
    }
}
