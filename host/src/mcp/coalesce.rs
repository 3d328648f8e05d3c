//! One write for a one-message reply. rmcp answers every POST of a session with an SSE stream
//! whose message comes a moment after the response itself, and its end a moment after that:
//! HTTP/1 then writes the headers, the message and the end of the chunked body as they come —
//! several TCP segments and wake-ups of the client for every tool call. Here the response
//! waits for its first data for at most [`HOLD`], and data is held back until the next frame
//! or the end is known, again at most [`HOLD`]: a reply that is one message goes out in one
//! write (with its length), and a stream that goes on (notifications, keep-alives) is delayed
//! by at most that much, never reordered.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
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
    let body = match tokio::time::timeout(HOLD, body.frame()).await {
        // Nothing yet (a slow tool): the reply streams as it comes.
        Err(_) => Body::new(body),
        Ok(None) => Body::empty(),
        Ok(Some(Ok(frame))) => match frame.into_data() {
            Ok(data) if body.is_end_stream() => Body::from(data),
            Ok(data) => {
                body.next = Some(Frame::data(data));
                Body::new(body)
            }
            Err(other) => {
                body.next = Some(other);
                Body::new(body)
            }
        },
        Ok(Some(Err(e))) => {
            Body::from_stream(futures::stream::once(async move { Err::<Bytes, _>(e) }))
        }
    };
    Response::from_parts(parts, body)
}

/// A body that joins data frames that come within `hold` of each other.
pub struct Coalesced {
    inner: Body,
    hold: Duration,
    held: BytesMut,
    /// When the held data must go out, whether more came or not.
    deadline: Option<Pin<Box<Sleep>>>,
    /// A frame to give before anything else: trailers after the held data, or the first
    /// frame when [`replies`] looked at it and put it back.
    next: Option<Frame<Bytes>>,
    ended: bool,
}

impl Coalesced {
    /// Wraps `inner`.
    pub fn new(inner: Body, hold: Duration) -> Self {
        Coalesced {
            inner,
            hold,
            held: BytesMut::new(),
            deadline: None,
            next: None,
            ended: false,
        }
    }

    fn release(&mut self) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.deadline = None;
        Poll::Ready(Some(Ok(Frame::data(self.held.split().freeze()))))
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
        if let Some(frame) = this.next.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        while !this.ended {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        this.held.extend_from_slice(&data);
                        if this.deadline.is_none() {
                            this.deadline = Some(Box::pin(tokio::time::sleep(this.hold)));
                        }
                    }
                    Err(other) if this.held.is_empty() => return Poll::Ready(Some(Ok(other))),
                    Err(other) => {
                        this.next = Some(other);
                        return this.release();
                    }
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => {
                    let due = this
                        .deadline
                        .as_mut()
                        .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                    return if due { this.release() } else { Poll::Pending };
                }
            }
        }
        if this.held.is_empty() {
            Poll::Ready(None)
        } else {
            this.release()
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.held.is_empty() && self.next.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.inner.size_hint();
        let held = self.held.len() as u64;
        hint.set_lower(hint.lower() + held);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + held);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

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
    async fn a_reply_and_its_end_go_out_as_one_frame() {
        let body = Body::new(Coalesced::new(
            paced(&["data: one\n\n", "data: two\n\n"], Duration::ZERO),
            Duration::from_millis(50),
        ));
        assert_eq!(
            frames(body).await,
            [Bytes::from("data: one\n\ndata: two\n\n")]
        );
    }

    #[tokio::test]
    async fn a_stream_that_goes_on_is_held_back_no_longer_than_the_hold() {
        let body = Body::new(Coalesced::new(
            paced(&["a", "b", "c"], Duration::from_millis(40)),
            Duration::from_millis(5),
        ));
        let got = frames(body).await;
        // Each chunk comes long after the hold: none is joined, none is lost or reordered.
        assert_eq!(got, [Bytes::from("a"), Bytes::from("b"), Bytes::from("c")]);
    }
}
