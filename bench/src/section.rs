//! The generated section of BENCHMARKS.md: everything between two markers is
//! replaced; the prose and figures around it stay as they are.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// The line that opens the generated section.
pub(crate) const BEGIN: &str = "<!-- pando-bench:begin -->";
/// The line that closes it.
pub(crate) const END: &str = "<!-- pando-bench:end -->";

/// Why the generated section could not be written.
#[derive(Debug, Error)]
pub(crate) enum SectionError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// One marker without the other, a marker twice, or the end before the
    /// beginning: the file was edited by hand around the section.
    #[error(
        "{path}: the generated section's markers are broken ({problem}); expected one line `{BEGIN}` and, after it, one line `{END}`"
    )]
    Markers {
        /// The file.
        path: PathBuf,
        /// What is wrong with them.
        problem: &'static str,
    },
}

/// `doc` with the text between the markers replaced by `generated`. Without
/// either marker, the section is appended under `heading`.
fn replace(doc: &str, generated: &str, heading: &str) -> Result<String, &'static str> {
    let begins: Vec<_> = doc.match_indices(BEGIN).collect();
    let ends: Vec<_> = doc.match_indices(END).collect();
    let body = format!("{BEGIN}\n{}\n{END}", generated.trim_end());
    match (begins.as_slice(), ends.as_slice()) {
        ([], []) => {
            let mut out = doc.trim_end().to_string();
            out.push_str(&format!("\n\n{heading}\n\n{body}\n"));
            Ok(out)
        }
        ([(b, _)], [(e, _)]) if b < e => Ok(format!("{}{body}{}", &doc[..*b], &doc[*e + END.len()..])),
        ([_], [_]) => Err("the end marker comes before the beginning"),
        ([], _) => Err("the beginning marker is missing"),
        (_, []) => Err("the end marker is missing"),
        _ => Err("a marker appears more than once"),
    }
}

/// Writes `generated` into the section of the file at `path` (appended under
/// `heading` when the file has no markers yet), through a temporary file and
/// a rename.
pub(crate) fn write(path: &Path, generated: &str, heading: &str) -> Result<(), SectionError> {
    let io = |source| SectionError::Io {
        path: path.to_path_buf(),
        source,
    };
    let doc = std::fs::read_to_string(path).map_err(io)?;
    let new = replace(&doc, generated, heading).map_err(|problem| SectionError::Markers {
        path: path.to_path_buf(),
        problem,
    })?;
    let tmp = path.with_extension("md.pando-bench-tmp");
    std::fs::write(&tmp, new).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_between_the_markers() {
        let doc = format!("# B\n\nprose\n\n{BEGIN}\nold table\n{END}\n\nmore prose\n");
        let new = replace(&doc, "new table\n", "## H").unwrap();
        assert_eq!(
            new,
            format!("# B\n\nprose\n\n{BEGIN}\nnew table\n{END}\n\nmore prose\n")
        );
        // Idempotent.
        assert_eq!(replace(&new, "new table", "## H").unwrap(), new);
    }

    #[test]
    fn appends_when_there_are_no_markers() {
        let new = replace("# B\n\nprose\n", "t", "## H").unwrap();
        assert_eq!(new, format!("# B\n\nprose\n\n## H\n\n{BEGIN}\nt\n{END}\n"));
    }

    #[test]
    fn broken_markers_are_refused() {
        assert!(replace(&format!("{END}\n{BEGIN}\n"), "t", "h").is_err());
        assert!(replace(&format!("{BEGIN}\n"), "t", "h").is_err());
        assert!(replace(&format!("{END}\n"), "t", "h").is_err());
        assert!(replace(&format!("{BEGIN}\n{BEGIN}\n{END}\n"), "t", "h").is_err());
    }

    #[test]
    fn writes_through_a_temporary_file() {
        let dir = std::env::temp_dir().join(format!("pando-bench-section-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("BENCHMARKS.md");
        std::fs::write(&path, format!("a\n{BEGIN}\nx\n{END}\nb\n")).unwrap();
        write(&path, "y", "h").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("a\n{BEGIN}\ny\n{END}\nb\n")
        );
        let err = write(&dir.join("missing.md"), "y", "h").unwrap_err();
        assert!(err.to_string().contains("missing.md"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
