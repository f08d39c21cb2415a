//! Request bodies read with a hard size limit.
use actix_web::http::header;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::HttpRequest;
use futures_util::StreamExt;

#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    /// The connection failed or the body was malformed at the transport level.
    Broken,
    /// The whole body did not arrive within the server's body timeout, seconds.
    TimedOut(u64),
}

/// Reads at most `limit` bytes; a larger body (declared or actual) is refused
/// without reading the rest. The whole body must arrive within the server's
/// `--body-timeout`: a client that trickles its body holds a connection and a
/// buffer, and is cut off (the response to an unread body closes the connection).
pub async fn read_limited(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let timeout = req
        .app_data::<super::State>()
        .map_or(DEFAULT_BODY_TIMEOUT, |s| s.settings.body_timeout);
    tokio::time::timeout(timeout, read_all(req, payload, limit))
        .await
        .unwrap_or(Err(BodyError::TimedOut(timeout.as_secs().max(1))))
}

/// The body timeout when no server state is at hand (handlers tested alone).
const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn read_all(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        if buf.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The media type of the request, lower-cased, without parameters.
pub fn media_type(req: &HttpRequest) -> Option<String> {
    let v = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next()?.trim().to_ascii_lowercase())
}
