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
///
/// The folders live under [`uploads_root`] and each holds a `.lock` file locked for the
/// upload's lifetime: a process killed mid-import (`kill -9`) cannot remove its folder, so the
/// next `belong serve` removes every folder whose lock nobody holds ([`clean_leftovers`]).
#[derive(Debug)]
pub struct TempUpload {
    dir: PathBuf,
    path: PathBuf,
    name: String,
    /// Held (locked) until the folder is removed.
    _lock: std::fs::File,
}

/// The service's private folder for uploads: `belong-uploads` in the system temporary folder
/// (`TMPDIR`), readable by this user only.
pub fn uploads_root() -> PathBuf {
    std::env::temp_dir().join("belong-uploads")
}

/// Create `dir` readable by this user only (an existing one is made so).
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    Ok(())
}

/// Remove the upload folders under `root` that no live upload holds (left by a process that was
/// killed), and any `belong-upload-*` folder of older versions in `legacy` older than an hour.
/// Returns how many were removed.
pub fn clean_leftovers(root: &Path, legacy: &Path) -> usize {
    let mut removed = 0;
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let dir = entry.path();
        if !entry.file_name().to_string_lossy().starts_with("upload-") {
            continue;
        }
        let held = std::fs::File::open(dir.join(".lock")).is_ok_and(|f| f.try_lock().is_err());
        if !held && std::fs::remove_dir_all(&dir).is_ok() {
            removed += 1;
        }
    }
    // Older versions wrote `belong-upload-*` straight into the temporary folder, unlocked.
    let hour = std::time::Duration::from_secs(3600);
    for entry in std::fs::read_dir(legacy).into_iter().flatten().flatten() {
        let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|a| a > hour));
        if entry.file_name().to_string_lossy().starts_with("belong-upload-")
            && old
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

impl TempUpload {
    fn write(body: &[u8], ext: &str) -> Result<TempUpload, AppError> {
        TempUpload::write_in(&uploads_root(), body, ext)
    }

    fn write_in(root: &Path, body: &[u8], ext: &str) -> Result<TempUpload, AppError> {
        let internal = |e: std::io::Error| AppError::Internal(format!("saving the upload: {e}"));
        private_dir(root).map_err(internal)?;
        let random: u128 = rand::random();
        let dir = root.join(format!("upload-{random:032x}"));
        let mut builder = std::fs::DirBuilder::new();
        // Uploads hold personal data: readable by this user only.
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(internal)?;
        let lock = std::fs::File::create(dir.join(".lock")).map_err(internal)?;
        lock.lock().map_err(internal)?;
        let name = format!("upload.{ext}");
        let upload = TempUpload { path: dir.join(&name), dir, name, _lock: lock };
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
                let reason = crate::core::text::clip_lines(&file.clean(reason), crate::core::text::MESSAGE_LINE);
                r["reason"] = Value::from(reason);
            }
        }
    }
    Ok(Json(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12: a `kill -9` during `POST /people/import` left the uploaded CSV (names, phones,
    /// emails) in the temporary folder for ever.
    #[test]
    fn uploads_left_by_a_killed_process_are_removed_at_start_up() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("belong-uploads");
        // A live upload: its folder stays while it is held, and goes when it is dropped.
        let live = TempUpload::write_in(&root, b"id,name\nr1,Ana", "csv").unwrap();
        // What a killed process leaves: a folder whose lock nobody holds.
        let dead = root.join("upload-dead");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(".lock"), "").unwrap();
        std::fs::write(dead.join("upload.csv"), "id,email\nr2,x@example.org").unwrap();
        let no_lock = root.join("upload-nolock");
        std::fs::create_dir(&no_lock).unwrap();
        assert_eq!(clean_leftovers(&root, tmp.path()), 2);
        assert!(!dead.exists() && !no_lock.exists());
        assert!(live.path().exists(), "a live upload is kept");
        let dir = live.path().parent().unwrap().to_path_buf();
        drop(live);
        assert!(!dir.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&root).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }
}
