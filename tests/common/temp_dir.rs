//! A temporary directory per test, removed on drop.

use std::path::{Path, PathBuf};

/// A fresh directory under the system's temporary directory, named after
/// the test binary's purpose, `name` and the process, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// An empty directory `sagemaker-flight-{name}-{pid}`.
    pub fn new(name: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("sagemaker-flight-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The path of `name` in it.
    pub fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }

    /// Writes `text` to `name` in it; its path.
    pub fn write(&self, name: &str, text: &str) -> String {
        std::fs::write(self.0.join(name), text).expect("write");
        self.file(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
