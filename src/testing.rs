//! Helpers for unit tests: temporary fixture trees and rendering collector output.

use crate::batch::Batch;
use crate::collector::Collector;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory under the system temp dir, removed on drop; unique per test.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "sc-agent-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` at `relative`, creating parent directories.
    pub fn write(&self, relative: &str, contents: &str) -> PathBuf {
        self.write_bytes(relative, contents.as_bytes())
    }

    pub fn write_bytes(&self, relative: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create fixture dir");
        }
        std::fs::write(&path, contents).expect("write fixture");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs one collector once and renders what it wrote as exposition text.
pub fn render(collector: &mut dyn Collector) -> Result<String, crate::collector::CollectError> {
    let mut result = Ok(());
    let text = render_with(|batch| result = collector.collect(batch));
    result.map(|()| text)
}

/// Renders what `write` writes into a fresh batch as exposition text.
pub fn render_with(write: impl FnOnce(&mut Batch)) -> String {
    let mut batch = Batch::new();
    batch.begin(0);
    write(&mut batch);
    let mut out = Vec::new();
    crate::output::text::write(&batch, &mut out);
    String::from_utf8(out).expect("exposition text is UTF-8")
}
