//! One line for an API failure, whatever shape the CLI gave it: the HTTP status when it can be
//! found (a field, a phrase like "unexpected status 401", a JSON body, or Gemini's exit code,
//! which is the status modulo 256), the CLI's own message cut to one line, and what to do.

use serde_json::Value;

/// How long a CLI's message may get in the one line.
const MAX_MESSAGE_CHARS: usize = 300;

/// What went wrong, as far as the user's next step is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 401/403: the key or login.
    Auth,
    /// 429: rate limit or quota.
    RateLimit,
    /// 5xx, or "high demand" / "overloaded": the service.
    Server,
    /// No answer at all: refused, reset, closed, unreachable.
    Network,
    /// Anything else (400, 404, ...): the message says it all.
    Other,
}

impl Kind {
    pub fn of(status: Option<u16>, message: &str) -> Kind {
        match status {
            Some(401 | 403) => return Kind::Auth,
            Some(429) => return Kind::RateLimit,
            Some(500..=599) => return Kind::Server,
            Some(_) => return Kind::Other,
            None => {}
        }
        let lower = message.to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
        if has(&["high demand", "overloaded", "temporarily unavailable"]) {
            Kind::Server
        } else if has(&[
            "connection refused",
            "econnrefused",
            "econnreset",
            "connection dropped",
            "connection reset",
            "connection failed",
            "fetch failed",
            "error sending request",
            "stream disconnected",
            "enotfound",
            "network",
        ]) {
            Kind::Network
        } else {
            Kind::Other
        }
    }

    fn advice(self) -> Option<&'static str> {
        match self {
            Kind::Auth => Some("check the API key or log in again"),
            Kind::RateLimit => {
                Some("rate limit or quota reached: wait and try again, or check the plan's limits")
            }
            Kind::Server => Some("the service is having trouble: try again later"),
            Kind::Network => {
                Some("the API could not be reached: check the network, proxy or API base URL")
            }
            Kind::Other => None,
        }
    }
}

/// `cli: API error STATUS: message; advice` (parts left out when unknown), on one line.
pub fn describe(cli: &str, status: Option<u16>, message: &str) -> String {
    let (message, body_status) = unwrap_api_error(message);
    let message = one_line(&message);
    let status = status.or(body_status).or_else(|| status_in(&message));
    let kind = Kind::of(status, &message);
    let mut line = match status {
        Some(code) => format!("{cli}: API error {code}"),
        None if kind == Kind::Network => format!("{cli}: network error"),
        None => format!("{cli}: API error"),
    };
    if !message.is_empty() {
        line.push_str(": ");
        line.push_str(&message);
    }
    if let Some(advice) = kind.advice() {
        line.push_str(" (");
        line.push_str(advice);
        line.push(')');
    }
    line
}

/// `describe` for what reads as an API failure (a status, a JSON error body, a known network
/// or overload phrase); other messages (a turn cap, a budget) as `cli: message`, on one line.
pub fn line(cli: &str, status: Option<u16>, message: &str) -> String {
    let (unwrapped, body_status) = unwrap_api_error(message);
    let api = status
        .or(body_status)
        .or_else(|| status_in(&unwrapped))
        .is_some()
        || Kind::of(None, &unwrapped) != Kind::Other;
    if api {
        describe(cli, status, message)
    } else {
        format!("{cli}: {}", one_line(message))
    }
}

/// The text cut to one line: whitespace runs (newlines included) become one space, and a long
/// text ends with `…`.
pub fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => joined,
        Some((at, _)) => format!("{}…", joined[..at].trim_end()),
    }
}

/// Gemini's `[API Error: {...json...}]` and Codex's passed-through JSON bodies, read as the
/// message (and status) they carry; any other text as it is.
fn unwrap_api_error(text: &str) -> (String, Option<u16>) {
    let trimmed = text.trim();
    let (inner, rest) = match trimmed.strip_prefix("[API Error: ") {
        Some(after) => match after.find(']') {
            // The JSON body's own brackets: take the last `]` of the first line.
            Some(_) => {
                let first_line_end = after.find('\n').unwrap_or(after.len());
                let close = after[..first_line_end].rfind(']').unwrap_or(first_line_end);
                (
                    &after[..close],
                    after[close..].trim_start_matches(']').trim(),
                )
            }
            None => (after, ""),
        },
        None => (trimmed, ""),
    };
    let (inner, status) = match serde_json::from_str::<Value>(inner) {
        Ok(body) => body_message(&body).unwrap_or_else(|| (inner.to_string(), None)),
        Err(_) => (inner.to_string(), None),
    };
    if rest.is_empty() {
        (inner, status)
    } else {
        (format!("{inner} {rest}"), status)
    }
}

/// The message of an API error body, `{"error":{"message":...}}` or `{"message":...}`, and its
/// status when it has one.
fn body_message(body: &Value) -> Option<(String, Option<u16>)> {
    let error = body.get("error").filter(|e| e.is_object()).unwrap_or(body);
    let message = error.get("message").and_then(Value::as_str)?;
    let status = [error.get("code"), body.get("status"), error.get("status")]
        .into_iter()
        .flatten()
        .find_map(Value::as_u64)
        .filter(|s| (400..=599).contains(s))
        .and_then(|s| u16::try_from(s).ok());
    Some((message.to_string(), status))
}

/// An HTTP status named in a message: "status 401", "status code 400", "status: 429", "last
/// status: 429 Too Many Requests", "(429)", `"code":401`.
pub fn status_in(text: &str) -> Option<u16> {
    let lower = text.to_lowercase();
    let after = |marker: &str| -> Option<u16> {
        lower.match_indices(marker).find_map(|(at, m)| {
            let rest = lower[at + m.len()..].trim_start_matches([' ', ':', '"']);
            three_digits(rest)
        })
    };
    after("status code")
        .or_else(|| after("status"))
        .or_else(|| after("\"code\""))
        .or_else(|| {
            // "Request rejected (429)"
            lower.match_indices('(').find_map(|(at, _)| {
                let rest = &lower[at + 1..];
                three_digits(rest).filter(|_| rest.as_bytes().get(3) == Some(&b')'))
            })
        })
}

/// Three digits that make an HTTP error status (400-599): a turn cap of 100 or an exit status
/// of 127 in a message is not one.
fn three_digits(text: &str) -> Option<u16> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    (digits.len() == 3)
        .then(|| digits.parse().ok())
        .flatten()
        .filter(|s| (400..=599).contains(s))
}

/// The HTTP status a Gemini exit code stands for: Gemini exits with the status of an API error,
/// which the system truncates to 8 bits (401 -> 145, 429 -> 173, 500 -> 244). Only the statuses
/// an API answers with are recovered, so that a crash's exit code (Node's 255, say) is not
/// read as one; Gemini's own codes (41-55, 130) are below them all.
pub fn status_of_exit_code(code: i32) -> Option<u16> {
    const API_STATUSES: [u16; 13] = [
        400, 401, 403, 404, 408, 409, 413, 429, 500, 502, 503, 504, 529,
    ];
    let status = u16::try_from(code).ok()?.checked_add(256)?;
    API_STATUSES.contains(&status).then_some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_found_where_the_clis_put_them() {
        assert_eq!(status_in("unexpected status 401 Unauthorized: Incorrect API key provided: sk-dummy (mock)., url: http://127.0.0.1:1/v1"), Some(401));
        assert_eq!(
            status_in("exceeded retry limit, last status: 429 Too Many Requests"),
            Some(429)
        );
        assert_eq!(status_in("API Error: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit"), Some(429));
        assert_eq!(
            status_in("{\"error\":{\"code\":500,\"status\":\"INTERNAL\"}}"),
            Some(500)
        );
        assert_eq!(status_in("status 42"), None);
        assert_eq!(status_in("status code 400 from the API"), Some(400));
        // Numbers that are not HTTP error statuses.
        assert_eq!(status_in("Reached maximum number of turns (100)"), None);
        assert_eq!(status_in("command exited with status 127"), None);
        assert_eq!(status_in("failed to write file (123)"), None);
        assert_eq!(
            line("codex", None, "Reached maximum number of turns (100)"),
            "codex: Reached maximum number of turns (100)"
        );
        assert_eq!(status_in("We’re currently experiencing high demand"), None);
        assert_eq!(status_of_exit_code(145), Some(401));
        assert_eq!(status_of_exit_code(173), Some(429));
        assert_eq!(status_of_exit_code(244), Some(500));
        for own in [0, 1, 41, 42, 53, 55, 130, 200, 255] {
            assert_eq!(status_of_exit_code(own), None, "{own}");
        }
    }

    #[test]
    fn each_failure_is_one_line_with_advice() {
        assert_eq!(
            describe("gemini", Some(401), "[API Error: {\"error\":{\"code\":401,\"message\":\"Request had invalid authentication credentials (mock).\",\"status\":\"UNAUTHENTICATED\"}}]"),
            "gemini: API error 401: Request had invalid authentication credentials (mock). (check the API key or log in again)"
        );
        let limit = describe(
            "gemini",
            Some(429),
            "[API Error: Resource has been exhausted (e.g. check quota) (mock).]\nPlease wait and try again later.",
        );
        assert_eq!(
            limit,
            "gemini: API error 429: Resource has been exhausted (e.g. check quota) (mock). Please wait and try again later. (rate limit or quota reached: wait and try again, or check the plan's limits)"
        );
        assert_eq!(
            describe("codex", None, "We’re currently experiencing high demand, which may cause temporary errors."),
            "codex: API error: We’re currently experiencing high demand, which may cause temporary errors. (the service is having trouble: try again later)"
        );
        assert_eq!(
            describe("codex", None, "stream disconnected before completion: error sending request"),
            "codex: network error: stream disconnected before completion: error sending request (the API could not be reached: check the network, proxy or API base URL)"
        );
        assert_eq!(
            describe("claude", Some(400), "bad request"),
            "claude: API error 400: bad request"
        );
        let long = describe("claude", None, &"x".repeat(1000));
        assert!(long.chars().count() < 330 && long.ends_with('…'), "{long}");
        assert!(!describe("gemini", None, "a\n\n  b\r\nc").contains('\n'));
    }
}
