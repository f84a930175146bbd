//! The tower layer that checks credentials on every RPC but Handshake.

use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use tonic::codegen::{Service, http};
use tonic::server::NamedService;

use crate::auth::authenticator::Authenticator;

/// The gRPC path of Flight's Handshake, the one RPC open to anyone.
pub const HANDSHAKE_PATH: &str = "/arrow.flight.protocol.FlightService/Handshake";

/// A gRPC service that answers `UNAUTHENTICATED` to any call but Handshake
/// without a valid bearer token, and passes the rest to `S`. With no
/// authenticator it passes everything.
#[derive(Clone, Debug)]
pub struct RequireAuth<S> {
    inner: S,
    auth: Option<Authenticator>,
}

impl<S> RequireAuth<S> {
    /// Guards `inner` with `auth` (`None`: no check).
    pub fn new(inner: S, auth: Option<Authenticator>) -> RequireAuth<S> {
        RequireAuth { inner, auth }
    }
}

impl<S: NamedService> NamedService for RequireAuth<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for RequireAuth<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Self::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if let Some(auth) = &self.auth
            && request.uri().path() != HANDSHAKE_PATH
        {
            let authorization = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|value| value.as_bytes());
            if let Err(status) = auth.check(authorization) {
                tracing::debug!(path = request.uri().path(), "unauthenticated call refused");
                return Either::Right(ready(Ok(status.into_http())));
            }
        }
        Either::Left(self.inner.call(request))
    }
}
