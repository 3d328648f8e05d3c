//! One write for a one-message reply. rmcp answers every POST of a session with an SSE stream
//! whose message comes a moment after the response itself, and its end a moment after that:
//! HTTP/1 then writes the headers, the message and the end of the chunked body as they come —
//! several TCP segments and wake-ups of the client for every tool call. Here the response
//! waits for its first data for at most [`HOLD`], and data is held back until the next frame
//! or the end is known, again at most [`HOLD`]: a reply that is one message goes out in one
//! write (with its length), and a stream that goes on (notifications, keep-alives) is delayed
//! by at most that much, never reordered.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::Sleep;

/// The longest a frame is held back waiting for the next one.
pub const HOLD: Duration = Duration::from_millis(2);

/// Coalesces the SSE replies to POSTs (the replies to requests); the long-lived GET stream is
/// left alone.
pub(crate) async fn replies(req: Request, next: Next) -> Response {
    let post = req.method() == Method::POST;
    let response = next.run(req).await;
    let sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !(post && sse) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let mut body = Coalesced::new(body, HOLD);
    // Whether it came in time or not, nothing is lost: what came is held in the body. A reply
    // that ended has an exact size, so it goes out with its length.
    let _ = tokio::time::timeout(HOLD, std::future::poll_fn(|cx| body.poll_gather(cx))).await;
    Response::from_parts(parts, Body::new(body))
}

/// A body that gives its data frames in batches: those that come within `hold` of each other,
/// one after another without a pause, so HTTP/1 writes them together. Frames are held, never
/// copied.
pub struct Coalesced {
    inner: Body,
    hold: Duration,
    held: VecDeque<Bytes>,
    held_bytes: u64,
    /// When the held data must go out, whether more came or not.
    deadline: Option<Pin<Box<Sleep>>>,
    /// What ends a batch when it is not data: trailers or an error, given after the held data.
    after: Option<Result<Frame<Bytes>, axum::Error>>,
    /// Giving out a batch: no more gathering until it is all out.
    releasing: bool,
    ended: bool,
}

impl Coalesced {
    /// Wraps `inner`.
    pub fn new(inner: Body, hold: Duration) -> Self {
        Coalesced {
            inner,
            hold,
            held: VecDeque::new(),
            held_bytes: 0,
            deadline: None,
            after: None,
            releasing: false,
            ended: false,
        }
    }

    /// Gathers frames until a batch is ready: the end, a frame that is not data, or the hold
    /// run out since the first held data.
    fn poll_gather(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while !self.ended && self.after.is_none() {
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        self.held_bytes += data.len() as u64;
                        self.held.push_back(data);
                        if self.deadline.is_none() {
                            self.deadline = Some(Box::pin(tokio::time::sleep(self.hold)));
                        }
                    }
                    Err(other) => self.after = Some(Ok(other)),
                },
                Poll::Ready(Some(Err(e))) => self.after = Some(Err(e)),
                Poll::Ready(None) => self.ended = true,
                Poll::Pending => {
                    let due = self
                        .deadline
                        .as_mut()
                        .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                    if !due {
                        return Poll::Pending;
                    }
                    break;
                }
            }
        }
        self.deadline = None;
        Poll::Ready(())
    }
}

impl HttpBody for Coalesced {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            if this.releasing {
                if let Some(data) = this.held.pop_front() {
                    this.held_bytes -= data.len() as u64;
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                this.releasing = false;
                if let Some(after) = this.after.take() {
                    return Poll::Ready(Some(after));
                }
                if this.ended {
                    return Poll::Ready(None);
                }
            }
            ready!(this.poll_gather(cx));
            this.releasing = true;
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.held.is_empty() && self.after.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.ended && self.after.is_none() {
            return SizeHint::with_exact(self.held_bytes);
        }
        let mut hint = self.inner.size_hint();
        hint.set_lower(hint.lower() + self.held_bytes);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + self.held_bytes);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use http_body_util::BodyExt;

    async fn frames(mut body: Body) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                out.push(data);
            }
        }
        out
    }

    /// A stream of chunks, each `gap` after the previous one.
    fn paced(chunks: &'static [&'static str], gap: Duration) -> Body {
        let stream = futures::stream::iter(chunks.iter()).then(move |c| async move {
            tokio::time::sleep(gap).await;
            Ok::<_, std::io::Error>(Bytes::from_static(c.as_bytes()))
        });
        Body::from_stream(stream)
    }

    /// A router answering every request with an event stream of `chunks`, `gap` apart.
    fn app(chunks: &'static [&'static str], gap: Duration) -> axum::Router {
        axum::Router::new()
            .route(
                "/",
                axum::routing::any(move || async move {
                    (
                        [(header::CONTENT_TYPE, "text/event-stream")],
                        paced(chunks, gap),
                    )
                }),
            )
            .layer(axum::middleware::from_fn(replies))
    }

    async fn send(app: axum::Router, method: Method) -> Response {
        use tower::ServiceExt;
        let req = Request::builder()
            .method(method)
            .uri("/")
            .body(Body::empty())
            .unwrap();
        app.oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn a_post_reply_that_ends_at_once_goes_out_whole_with_its_length() {
        let r = send(app(&["data: one\n\n"], Duration::ZERO), Method::POST).await;
        assert_eq!(r.body().size_hint().exact(), Some(11));
        assert_eq!(frames(r.into_body()).await, [Bytes::from("data: one\n\n")]);
        // The long-lived GET stream is left as it is.
        let r = send(app(&["data: one\n\n"], Duration::ZERO), Method::GET).await;
        assert_eq!(r.body().size_hint().exact(), None);
    }

    #[tokio::test]
    async fn a_slow_post_reply_streams_as_it_comes() {
        let r = send(app(&["a", "b"], Duration::from_millis(50)), Method::POST).await;
        // Answered before its first data, which still comes, in order.
        assert_eq!(r.body().size_hint().exact(), None);
        assert_eq!(
            frames(r.into_body()).await,
            [Bytes::from("a"), Bytes::from("b")]
        );
    }

    #[tokio::test]
    async fn a_reply_that_ends_at_once_is_gathered_whole_with_its_length() {
        let mut body = Coalesced::new(
            paced(&["data: one\n\n", "data: two\n\n"], Duration::ZERO),
            Duration::from_millis(50),
        );
        std::future::poll_fn(|cx| body.poll_gather(cx)).await;
        assert_eq!(body.size_hint().exact(), Some(22));
        assert_eq!(
            frames(Body::new(body)).await,
            [Bytes::from("data: one\n\n"), Bytes::from("data: two\n\n")]
        );
    }

    #[tokio::test]
    async fn a_stream_that_goes_on_is_held_back_no_longer_than_the_hold() {
        let mut body = Coalesced::new(
            paced(&["a", "b", "c"], Duration::from_millis(40)),
            Duration::from_millis(5),
        );
        // The hold runs out long before the next chunk: the first goes out alone.
        std::future::poll_fn(|cx| body.poll_gather(cx)).await;
        assert_eq!(body.held, [Bytes::from("a")]);
        assert_eq!(body.size_hint().exact(), None);
        // Nothing is lost or reordered.
        assert_eq!(
            frames(Body::new(body)).await,
            [Bytes::from("a"), Bytes::from("b"), Bytes::from("c")]
        );
    }
}
