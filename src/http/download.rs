//! File downloads of a selection of features (`/collections/{id}/items?f=gpkg|fgb|shp`): the
//! file is written off the async workers into an anonymous temporary file
//! ([`crate::app::layers::download_file`]), then streamed from it a chunk at a time, so a
//! county layer never sits in memory whole.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};

use super::AppError;
use crate::app::layers::{Layers, download_file};
use crate::export::{DownloadFormat, OutputCrs};

/// Bytes read from the file per body frame.
const CHUNK: usize = 256 * 1024;

/// The features of collection `id` at `positions` as a `format` attachment named
/// `{id}.{extension}`, in `crs`.
pub(super) async fn respond(
    layers: Arc<Layers>,
    id: &'static str,
    positions: Vec<usize>,
    format: DownloadFormat,
    crs: OutputCrs,
) -> Result<Response, AppError> {
    let file = tokio::task::spawn_blocking(move || -> Result<std::fs::File, AppError> {
        let c = layers.collection(id).ok_or_else(|| AppError::NotFound(format!("no collection '{id}'")))?;
        Ok(download_file(c, &positions, format, &crs)?)
    })
    .await??;
    let len = file.metadata().map_err(|e| AppError::Internal(format!("reading the download: {e}")))?.len();
    let body = FileBody { file: tokio::fs::File::from_std(file), remaining: len, buf: vec![0; CHUNK] };
    let mut res = Body::new(body).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.media_type()));
    // Collection ids are plain ASCII words, so the name needs no escaping.
    let disposition = format!("attachment; filename=\"{id}.{}\"", format.extension());
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// A response body read from a file, `CHUNK` bytes a frame, of known length.
struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    buf: Vec<u8>,
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining).unwrap_or(usize::MAX).min(this.buf.len());
        let mut read = ReadBuf::new(&mut this.buf[..want]);
        match Pin::new(&mut this.file).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) if read.filled().is_empty() => Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the download file ended early",
            )))),
            Poll::Ready(Ok(())) => {
                let chunk = Bytes::copy_from_slice(read.filled());
                this.remaining -= chunk.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
