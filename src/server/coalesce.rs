//! Coalesced writes for gRPC connections.
//!
//! HTTP/2 DATA frames are at most as large as the peer allows, and most
//! gRPC clients (tonic, grpc-go, grpc-java) allow 16 KiB. The `h2` crate
//! writes and flushes one DATA frame at a time, so streaming a large result
//! to such a client costs one `writev` per 16 KiB: 13,000 system calls for
//! 200 MB, more CPU than encoding the data. This wrapper collects the
//! frames in a buffer and writes it in one call once it holds
//! [`COALESCE_BYTES`], or when the connection has nothing more to write.
//!
//! When is that? `h2` flushes after every frame, and again, with no write
//! in between, before its connection task waits (`poll_complete` ends with
//! a flush). So a flush right after a write may be deferred, and a flush
//! with no write since the last one really flushes. A deferred flush also
//! wakes the connection task, so one more poll, ending in a flush, is
//! guaranteed even if `h2` went to sleep right after it.
//!
//! Shutting down, it writes what is buffered, sends FIN, and then reads
//! and discards what the peer still sends (WINDOW_UPDATEs, PINGs) until the
//! peer closes too, for at most [`LINGER`]. Closing a socket with unread
//! input makes the kernel answer RST, and a peer that gets RST may throw
//! away the end of the response it had not read yet.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// Bytes collected before a write to the socket.
pub const COALESCE_BYTES: usize = 1024 * 1024;
/// How long a shutdown waits for the peer to close its side.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// A stream whose writes are collected and written in large pieces.
#[derive(Debug)]
pub struct CoalescingStream<S> {
    inner: S,
    buffer: Vec<u8>,
    /// Bytes at the front of `buffer` already written to `inner`.
    written: usize,
    /// Whether anything was written since the last flush.
    wrote_since_flush: bool,
    /// Set once FIN is sent: until when to read what the peer still sends.
    lingering: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> CoalescingStream<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        CoalescingStream {
            inner,
            buffer: Vec::new(),
            written: 0,
            wrote_since_flush: false,
            lingering: None,
        }
    }

    fn buffered(&self) -> usize {
        self.buffer.len() - self.written
    }
}

impl<S: AsyncWrite + Unpin> CoalescingStream<S> {
    /// Writes everything buffered to `inner`.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buffer.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buffer[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buffer.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// Takes `len` bytes (copied by `copy`) into the buffer, writing it out
    /// first if they would not fit.
    fn poll_collect(
        &mut self,
        cx: &mut Context<'_>,
        len: usize,
        copy: impl FnOnce(&mut Vec<u8>),
    ) -> Poll<io::Result<usize>> {
        if self.buffered() > 0 && self.buffered() + len > COALESCE_BYTES {
            ready!(self.poll_drain(cx))?;
        }
        copy(&mut self.buffer);
        self.wrote_since_flush = true;
        Poll::Ready(Ok(len))
    }
}

impl<S: AsyncRead + Unpin> CoalescingStream<S> {
    /// Reads and discards input until the peer closes, an error, or the
    /// linger time is over.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.lingering.as_mut() else {
            return Poll::Ready(());
        };
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        let mut scratch = [0u8; 4096];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CoalescingStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for CoalescingStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_collect(cx, buf.len(), |buffer| buffer.extend_from_slice(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.get_mut().poll_collect(cx, len, |buffer| {
            for buf in bufs {
                buffer.extend_from_slice(buf);
            }
        })
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.wrote_since_flush && this.buffered() < COALESCE_BYTES {
            // Probably one frame of many: wait for more, but make sure of
            // one more poll (see the module doc).
            this.wrote_since_flush = false;
            cx.waker().wake_by_ref();
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_drain(cx))?;
        this.wrote_since_flush = false;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.lingering.is_none() {
            ready!(this.poll_drain(cx))?;
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.lingering = Some(Box::pin(tokio::time::sleep(LINGER)));
        }
        ready!(this.poll_linger(cx));
        Poll::Ready(Ok(()))
    }
}

impl<S: Connected> Connected for CoalescingStream<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn small_writes_are_held_until_a_flush_with_no_write_before_it() {
        let (client, mut server) = tokio::io::duplex(4 * COALESCE_BYTES);
        let mut stream = CoalescingStream::new(client);
        stream.write_all(b"frame one").await.expect("write");
        stream.flush().await.expect("flush");
        stream.write_all(b", frame two").await.expect("write");
        stream.flush().await.expect("flush");
        let mut peek = [0u8; 1];
        let nothing_yet =
            tokio::time::timeout(std::time::Duration::ZERO, server.read(&mut peek)).await;
        assert!(nothing_yet.is_err(), "the frames are still collected");
        // A flush with no write since the last one: the connection is idle.
        stream.flush().await.expect("flush");
        let mut received = vec![0u8; "frame one, frame two".len()];
        server.read_exact(&mut received).await.expect("read");
        assert_eq!(received, b"frame one, frame two");
    }

    #[tokio::test]
    async fn a_full_buffer_is_written_without_a_flush_and_order_is_kept() {
        let (client, mut server) = tokio::io::duplex(8 * COALESCE_BYTES);
        let mut stream = CoalescingStream::new(client);
        let frame: Vec<u8> = (0..16 * 1024).map(|i| (i % 251) as u8).collect();
        let frames = COALESCE_BYTES / frame.len() + 1;
        for _ in 0..frames {
            stream.write_all(&frame).await.expect("write");
        }
        // More than the buffer holds was written: the first part arrived.
        let mut received = vec![0u8; COALESCE_BYTES];
        server.read_exact(&mut received).await.expect("read");
        assert_eq!(received, frame.repeat(frames)[..COALESCE_BYTES]);
        // Shutting down writes the rest, then waits for the peer to close.
        let shutdown = tokio::spawn(async move { stream.shutdown().await });
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.expect("read");
        assert_eq!(rest, frame.repeat(frames)[COALESCE_BYTES..]);
        drop(server);
        shutdown
            .await
            .expect("task")
            .expect("shutdown ends when the peer closes");
    }

    #[tokio::test]
    async fn a_deferred_flush_wakes_its_task() {
        let (client, _server) = tokio::io::duplex(COALESCE_BYTES);
        let mut stream = CoalescingStream::new(client);
        stream.write_all(b"frame").await.expect("write");
        let woken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl std::task::Wake for Flag {
            fn wake(self: std::sync::Arc<Self>) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let waker = std::task::Waker::from(std::sync::Arc::new(Flag(woken.clone())));
        let mut cx = Context::from_waker(&waker);
        let flushed = Pin::new(&mut stream).poll_flush(&mut cx);
        assert!(matches!(flushed, Poll::Ready(Ok(()))));
        assert!(woken.load(std::sync::atomic::Ordering::SeqCst));
    }
}
