//! The user's JavaScript function file, and the files of its directory,
//! which the page may import.

use std::path::{Component, Path, PathBuf};

use thiserror::Error;

/// A JavaScript function file that cannot be served.
///
/// ```
/// use pando_web::{FunctionError, Site};
/// let e = Site::new("t", 1 << 20).function("/no/such/file.js").unwrap_err();
/// assert!(matches!(e, FunctionError::Unreadable { .. }));
/// assert!(e.to_string().contains("/no/such/file.js"));
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FunctionError {
    /// The file cannot be read.
    #[error("cannot read the function file {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The path is not a regular file.
    #[error("the function file {} is not a file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
}

/// The function file's directory, served read-only: only regular files
/// inside it (after following links), and no hidden files.
#[derive(Clone, Debug)]
pub(crate) struct FunctionDir {
    dir: PathBuf,
    /// The function file's name in `dir`.
    pub(crate) file: String,
}

impl FunctionDir {
    pub(crate) fn new(path: &Path) -> Result<Self, FunctionError> {
        let unreadable = |source| FunctionError::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        let full = std::fs::canonicalize(path).map_err(unreadable)?;
        if !std::fs::metadata(&full).map_err(unreadable)?.is_file() {
            return Err(FunctionError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        std::fs::File::open(&full).map_err(unreadable)?;
        let (Some(dir), Some(file)) = (full.parent(), full.file_name().and_then(|f| f.to_str())) else {
            return Err(FunctionError::NotAFile {
                path: path.to_path_buf(),
            });
        };
        Ok(FunctionDir {
            dir: dir.to_path_buf(),
            file: file.to_string(),
        })
    }

    /// The file at `relative` (a URL path below the directory), with its
    /// content type; `None` if it is not a file the page may have.
    pub(crate) async fn read(&self, relative: &str) -> Option<(Vec<u8>, &'static str)> {
        let wanted = Path::new(relative);
        let plain = wanted.components().all(|c| match c {
            Component::Normal(name) => name.to_str().is_some_and(|n| !n.starts_with('.')),
            _ => false,
        });
        if relative.is_empty() || relative.contains('\\') || !plain {
            return None;
        }
        let full = tokio::fs::canonicalize(self.dir.join(wanted)).await.ok()?;
        if !full.starts_with(&self.dir) || !tokio::fs::metadata(&full).await.ok()?.is_file() {
            return None;
        }
        let bytes = tokio::fs::read(&full).await.ok()?;
        Some((bytes, content_type(&full)))
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("js" | "mjs" | "cjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("wasm") => "application/wasm",
        Some("txt" | "csv") => "text/plain; charset=utf-8",
        Some("html") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_plain_files_inside_the_directory_are_served() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("fn");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("f.js"), "export default x => x").unwrap();
        std::fs::write(dir.join("lib.mjs"), "export const y = 1").unwrap();
        std::fs::write(dir.join(".secret"), "no").unwrap();
        std::fs::write(root.path().join("outside.js"), "no").unwrap();
        std::os::unix::fs::symlink(root.path().join("outside.js"), dir.join("link.js")).unwrap();
        let served = FunctionDir::new(&dir.join("f.js")).unwrap();
        assert_eq!(served.file, "f.js");
        let (bytes, kind) = served.read("lib.mjs").await.unwrap();
        assert_eq!(
            (bytes.as_slice(), kind),
            (&b"export const y = 1"[..], "text/javascript; charset=utf-8")
        );
        for refused in [
            "",
            ".secret",
            "../outside.js",
            "link.js",
            "/etc/passwd",
            "a\\..\\b",
            "./f.js",
            "nope.js",
        ] {
            assert!(served.read(refused).await.is_none(), "{refused}");
        }
        assert!(matches!(
            FunctionDir::new(&dir),
            Err(FunctionError::NotAFile { .. })
        ));
    }
}
