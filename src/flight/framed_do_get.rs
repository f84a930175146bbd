//! DoGet's FlightData framed without copying the batches' bodies.
//!
//! tonic encodes each message of a stream into its own buffer, and for
//! FlightData that copies the Arrow body: 250 MB for a read of 200,000
//! jobs, about a fifth of the server's CPU for it (perf). A FlightData
//! message is a few fields, then the body as the last field (number 1000),
//! so its gRPC frame can be sent as two pieces: the 5-byte gRPC prefix and
//! the fields before the body, encoded, then the body's own bytes.
//!
//! The DoGet handler cannot choose how tonic encodes, so the stream is
//! handed past it: [`FramedDoGet`], a layer around the Flight service,
//! marks each DoGet request ([`FramesDoGet`]); the handler of a marked
//! request puts its stream in the response's extensions ([`hand_off`])
//! and gives tonic an empty one; the layer then sends the stream's
//! messages as frames of the response body, and its end or error as the
//! gRPC trailers, as tonic would have. A request that did not pass the
//! layer (an in-process test calling the service) is answered by tonic
//! as usual.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arrow_flight::FlightData;
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use futures::future::BoxFuture;
use http_body::{Body, Frame, SizeHint};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::{Response, Status};

use crate::flight::sql_service::BoxedStream;

/// The gRPC method this applies to.
pub const DO_GET_PATH: &str = "/arrow.flight.protocol.FlightService/DoGet";

/// FlightData's `data_body` field number.
const DATA_BODY_FIELD: u32 = 1000;

/// Bodies up to this size are copied next to their fields, in one piece:
/// a separate HTTP/2 frame costs more than copying a few KiB.
const COPIED_BODY_BYTES: usize = 8 * 1024;

/// The mark of a DoGet request that passed [`FramedDoGet`].
#[derive(Clone, Copy, Debug)]
pub struct FramesDoGet;

/// A DoGet's stream, handed from the handler to [`FramedDoGet`]. (An
/// extension must be `Clone` and `Sync`: the stream is taken out once.)
#[derive(Clone)]
struct HandedOff(Arc<Mutex<Option<BoxedStream<FlightData>>>>);

/// Whether a request passed [`FramedDoGet`].
pub fn is_framed(request: &http::Extensions) -> bool {
    request.get::<FramesDoGet>().is_some()
}

/// A DoGet response whose stream is handed to [`FramedDoGet`] (for a
/// request it marked): its metadata kept, an empty stream for tonic.
pub fn hand_off(response: Response<BoxedStream<FlightData>>) -> Response<BoxedStream<FlightData>> {
    let (metadata, stream, mut extensions) = response.into_parts();
    extensions.insert(HandedOff(Arc::new(Mutex::new(Some(stream)))));
    Response::from_parts(metadata, futures::stream::empty().boxed(), extensions)
}

/// The layer around the Flight service that frames DoGet streams.
#[derive(Clone, Debug)]
pub struct FramedDoGet<S> {
    inner: S,
    max_message_bytes: usize,
}

impl<S> FramedDoGet<S> {
    /// Wraps `inner`; a message larger than `max_message_bytes` ends the
    /// stream with RESOURCE_EXHAUSTED, as tonic's limit would.
    pub fn new(inner: S, max_message_bytes: usize) -> Self {
        FramedDoGet {
            inner,
            max_message_bytes,
        }
    }
}

impl<S: NamedService> NamedService for FramedDoGet<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for FramedDoGet<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let is_do_get = request.uri().path() == DO_GET_PATH;
        if is_do_get {
            request.extensions_mut().insert(FramesDoGet);
        }
        let answered = self.inner.call(request);
        let max_message_bytes = self.max_message_bytes;
        Box::pin(async move {
            let mut response = answered.await?;
            let handed = response.extensions_mut().remove::<HandedOff>();
            let stream = handed.and_then(|HandedOff(slot)| match slot.lock() {
                Ok(mut slot) => slot.take(),
                Err(poisoned) => poisoned.into_inner().take(),
            });
            if let Some(stream) = stream {
                // tonic's body (of the empty stream) is dropped unread.
                let (parts, _) = response.into_parts();
                let body = FramedBody::new(stream, max_message_bytes);
                response = http::Response::from_parts(parts, tonic::body::Body::new(body));
            }
            Ok(response)
        })
    }
}

/// A DoGet response body: each message as one or two frames, then the
/// trailers with the stream's status.
struct FramedBody {
    stream: Option<BoxedStream<FlightData>>,
    /// The body of the message whose first piece was just sent.
    pending: Option<Bytes>,
    max_message_bytes: usize,
}

impl FramedBody {
    fn new(stream: BoxedStream<FlightData>, max_message_bytes: usize) -> Self {
        FramedBody {
            stream: Some(stream),
            pending: None,
            max_message_bytes,
        }
    }

    /// The end of the body: `status` as the trailers.
    fn end(&mut self, status: &Status) -> Frame<Bytes> {
        self.stream = None;
        let mut trailers = http::HeaderMap::new();
        if status.add_header(&mut trailers).is_err() {
            trailers.clear();
            // A message that is not a header value: the code still goes.
            let _ = Status::new(status.code(), "").add_header(&mut trailers);
        }
        Frame::trailers(trailers)
    }
}

/// A message's gRPC frame: the prefix and the fields before the body,
/// encoded, and the body when it is sent on its own; the message's length
/// as the error when it is larger than `max_message_bytes`.
fn frame(message: FlightData, max_message_bytes: usize) -> Result<(Bytes, Option<Bytes>), usize> {
    let FlightData {
        flight_descriptor,
        data_header,
        app_metadata,
        data_body,
    } = message;
    let fields = FlightData {
        flight_descriptor,
        data_header,
        app_metadata,
        data_body: Bytes::new(),
    };
    let body_len = if data_body.is_empty() {
        0
    } else {
        key_len(DATA_BODY_FIELD) + encoded_len_varint(data_body.len() as u64) + data_body.len()
    };
    let len = fields.encoded_len() + body_len;
    let prefix_len = u32::try_from(len)
        .ok()
        .filter(|_| len <= max_message_bytes)
        .ok_or(len)?;
    let copied = data_body.len() <= COPIED_BODY_BYTES;
    let mut head = BytesMut::with_capacity(5 + len - if copied { 0 } else { data_body.len() });
    // Not compressed; the length, big-endian.
    head.put_u8(0);
    head.put_u32(prefix_len);
    // Encoding into a buffer of the right capacity cannot fail.
    let _ = fields.encode(&mut head);
    if !data_body.is_empty() {
        encode_key(DATA_BODY_FIELD, WireType::LengthDelimited, &mut head);
        encode_varint(data_body.len() as u64, &mut head);
        if copied {
            head.put_slice(&data_body);
        }
    }
    let separate = (!copied).then_some(data_body);
    Ok((head.freeze(), separate))
}

impl Body for FramedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(body) = self.pending.take() {
            return Poll::Ready(Some(Ok(Frame::data(body))));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        let frame_of = match futures::ready!(stream.poll_next_unpin(cx)) {
            Some(Ok(message)) => match frame(message, self.max_message_bytes) {
                Ok((head, body)) => {
                    self.pending = body;
                    Frame::data(head)
                }
                Err(len) => {
                    let limit = self.max_message_bytes;
                    self.end(&Status::resource_exhausted(format!(
                        "a message of {len} bytes is larger than the limit of {limit} bytes"
                    )))
                }
            },
            Some(Err(status)) => self.end(&status),
            None => self.end(&Status::ok("")),
        };
        Poll::Ready(Some(Ok(frame_of)))
    }

    fn is_end_stream(&self) -> bool {
        self.stream.is_none() && self.pending.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frame tonic would send: the prefix, then the whole message.
    fn tonic_frame(message: &FlightData) -> Vec<u8> {
        let encoded = message.encode_to_vec();
        let mut frame = vec![0];
        frame.extend_from_slice(&u32::try_from(encoded.len()).unwrap().to_be_bytes());
        frame.extend_from_slice(&encoded);
        frame
    }

    fn framed(message: &FlightData, max: usize) -> Result<(Vec<u8>, bool), usize> {
        let (head, body) = frame(message.clone(), max)?;
        let separate = body.is_some();
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(&body.unwrap_or_default());
        Ok((bytes, separate))
    }

    #[test]
    fn frames_are_tonics_bytes_with_large_bodies_sent_apart() {
        let descriptor = arrow_flight::FlightDescriptor::new_path(vec!["t".into()]);
        let cases = [
            (FlightData::default(), false),
            (FlightData::new().with_data_header(vec![1u8; 300]), false),
            (
                FlightData::new()
                    .with_data_header(vec![2u8; 10])
                    .with_data_body(vec![3u8; 100]),
                false,
            ),
            (
                FlightData::new()
                    .with_descriptor(descriptor)
                    .with_app_metadata(vec![4u8; 5])
                    .with_data_header(vec![5u8; 200])
                    .with_data_body(vec![6u8; COPIED_BODY_BYTES + 1]),
                true,
            ),
            (FlightData::new().with_data_body(vec![7u8; 1 << 20]), true),
        ];
        for (message, apart) in cases {
            let (bytes, separate) = framed(&message, usize::MAX).unwrap();
            assert_eq!(bytes, tonic_frame(&message));
            assert_eq!(separate, apart);
        }
    }

    #[test]
    fn a_message_over_the_limit_is_refused_with_its_length() {
        let message = FlightData::new().with_data_body(vec![0u8; 1000]);
        let len = message.encoded_len();
        assert_eq!(framed(&message, len - 1), Err(len));
        assert!(framed(&message, len).is_ok());
    }

    #[tokio::test]
    async fn the_body_sends_every_frame_then_the_status() {
        use http_body_util::BodyExt;
        let messages = vec![
            FlightData::new().with_data_header(vec![1u8; 3]),
            FlightData::new().with_data_body(vec![2u8; 100_000]),
        ];
        let expected: Vec<u8> = messages.iter().flat_map(tonic_frame).collect();
        let ok = futures::stream::iter(messages.clone().into_iter().map(Ok)).boxed();
        let collected = FramedBody::new(ok, usize::MAX).collect().await.unwrap();
        let trailers = collected.trailers().cloned().unwrap();
        assert_eq!(trailers.get("grpc-status").unwrap(), "0");
        assert_eq!(collected.to_bytes().to_vec(), expected);

        let failing =
            futures::stream::iter([Ok(messages[0].clone()), Err(Status::out_of_range("gone"))])
                .boxed();
        let collected = FramedBody::new(failing, usize::MAX)
            .collect()
            .await
            .unwrap();
        let trailers = collected.trailers().cloned().unwrap();
        assert_eq!(trailers.get("grpc-status").unwrap(), "11");
        assert_eq!(collected.to_bytes().to_vec(), tonic_frame(&messages[0]));
    }
}
