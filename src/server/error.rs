//! What stops the server.

/// Errors that stop the server: any error of the layers below, or of
/// binding and serving.
pub type ServeError = Box<dyn std::error::Error + Send + Sync>;
