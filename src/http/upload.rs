//! File uploads (people CSV, block, area, resource and indicator files): the body saved to a
//! private temporary file for the import use cases, and their results reported under the
//! upload's name, never the temporary path.

use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde_json::Value;

use super::AppError;
use super::body::{body_bytes, media_type};
use crate::app;
use crate::ingest::{IngestError, Rejection};

/// A request body and its media type, read whole (the body-limit layer caps it: 413).
#[derive(Debug)]
pub struct Upload {
    media_type: Option<String>,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Upload {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let media_type = media_type(req.headers());
        Ok(Upload { media_type, body: body_bytes(req, state).await? })
    }
}

impl Upload {
    /// Write the body to a temporary file with the extension of its media type, one of
    /// `accepted` (`(media type, extension)`); 415 for any other media type.
    pub fn save(&self, accepted: &[(&str, &str)]) -> Result<TempUpload, AppError> {
        let found = self.media_type.as_deref().unwrap_or("");
        let Some((_, ext)) = accepted.iter().find(|(m, _)| *m == found) else {
            let list: Vec<&str> = accepted.iter().map(|(m, _)| *m).collect();
            let found = if found.is_empty() { "no Content-Type".to_string() } else { format!("Content-Type {found}") };
            return Err(AppError::UnsupportedMediaType(format!("{found}; this endpoint reads {}", list.join(", "))));
        };
        TempUpload::write(&self.body, ext)
    }

    /// [`Upload::save`] with one extension for every accepted media type.
    pub fn save_as(&self, accepted: &[&str], ext: &str) -> Result<TempUpload, AppError> {
        let pairs: Vec<(&str, &str)> = accepted.iter().map(|m| (*m, ext)).collect();
        self.save(&pairs)
    }
}

/// An uploaded body in a private temporary folder, removed on drop.
#[derive(Debug)]
pub struct TempUpload {
    dir: PathBuf,
    path: PathBuf,
    name: String,
}

impl TempUpload {
    fn write(body: &[u8], ext: &str) -> Result<TempUpload, AppError> {
        let internal = |e: std::io::Error| AppError::Internal(format!("saving the upload: {e}"));
        let random: u128 = rand::random();
        let dir = std::env::temp_dir().join(format!("belong-upload-{random:032x}"));
        let mut builder = std::fs::DirBuilder::new();
        // Uploads hold personal data: readable by this user only.
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(internal)?;
        let name = format!("upload.{ext}");
        let upload = TempUpload { path: dir.join(&name), dir, name };
        std::fs::write(&upload.path, body).map_err(internal)?;
        Ok(upload)
    }

    /// Where the body is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `text` with the temporary path replaced by the upload's short name (`upload.csv`).
    fn clean(&self, text: &str) -> String {
        text.replace(&self.path.display().to_string(), &self.name)
    }
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Rejections naming the upload, not the temporary file.
fn clean_rejections(rejections: Vec<Rejection>, file: &TempUpload) -> Vec<Rejection> {
    rejections.into_iter().map(|r| Rejection { file: file.name.clone(), reason: file.clean(&r.reason), ..r }).collect()
}

/// Map a failed import: bad input is 422 (listing the rejected records of an all-or-nothing
/// import), anything else is ours (500).
pub fn import_error(e: app::AppError, file: &TempUpload) -> AppError {
    match e {
        app::AppError::Ingest(IngestError::Invalid { rejections, .. }) => AppError::Unprocessable {
            detail: format!("{}: {} invalid record(s); nothing was imported", file.name, rejections.len()),
            rejected: clean_rejections(rejections, file),
        },
        app::AppError::Ingest(other) => {
            AppError::Unprocessable { detail: file.clean(&other.to_string()), rejected: Vec::new() }
        }
        other => AppError::App(other),
    }
}

/// The summary of an import, with the upload's name in place of the temporary path.
pub fn summary<T: serde::Serialize>(result: &T, file: &TempUpload) -> Result<Json<Value>, AppError> {
    let mut v = serde_json::to_value(result).map_err(|e| AppError::Internal(format!("encoding the summary: {e}")))?;
    if let Some(list) = v.get_mut("rejected").and_then(Value::as_array_mut) {
        for r in list {
            r["file"] = Value::from(file.name.as_str());
            if let Some(reason) = r["reason"].as_str() {
                r["reason"] = Value::from(file.clean(reason));
            }
        }
    }
    Ok(Json(v))
}
