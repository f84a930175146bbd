//! The Arrow Flight face of the server: the service, its tickets, and the
//! rules for what goes back to a client in a status.

pub mod fleet;
pub mod service;
pub mod sql;
pub mod ticket;

pub use fleet::Fleet;
pub use service::FlightServer;
pub use sql::SqlService;

/// Longest status message sent to a client: AWS messages and client input
/// echoed in errors are cut here so a status never balloons.
pub const MAX_STATUS_MESSAGE: usize = 1024;

/// Cuts `message` to [`MAX_STATUS_MESSAGE`] bytes on a character boundary.
pub fn cap_message(mut message: String) -> String {
    if message.len() > MAX_STATUS_MESSAGE {
        let mut end = MAX_STATUS_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        assert_eq!(cap_message("short".into()), "short");
        let long = "é".repeat(MAX_STATUS_MESSAGE);
        let capped = cap_message(long);
        assert!(capped.len() <= MAX_STATUS_MESSAGE + 3);
        assert!(capped.ends_with("..."));
    }
}
