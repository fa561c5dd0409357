//! Gemini CLI chat files (`~/.gemini/tmp/<project>/chats/session-<time>-<id8>.jsonl`, since
//! 0.39; one `.json` object before): the first line is the session's metadata
//! (`{"sessionId", "projectHash", "startTime", ...}`), appended again at each resume.

use serde_json::Value;

/// The session id a chat file belongs to: its first metadata line's (or the legacy record's)
/// `sessionId`.
pub fn session_id(bytes: &[u8]) -> Option<String> {
    let first = bytes
        .split(|b| *b == b'\n')
        .find(|l| !l.trim_ascii().is_empty())?;
    let value: Value = serde_json::from_slice(first)
        .or_else(|_| serde_json::from_slice(bytes))
        .ok()?;
    value
        .get("sessionId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_of_a_chat_file() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/native-samples/gemini-session-2026-12-01T10-54-7a9ca440.jsonl"
        );
        assert_eq!(
            session_id(&std::fs::read(path).unwrap()).as_deref(),
            Some("7a9ca440-ea38-4724-a496-49e63d279cdd")
        );
        // The legacy record: one pretty-printed object.
        let legacy = b"{\n  \"sessionId\": \"abc\",\n  \"messages\": []\n}\n";
        assert_eq!(session_id(legacy).as_deref(), Some("abc"));
        assert_eq!(session_id(b""), None);
        assert_eq!(session_id(b"garbage\n"), None);
        assert_eq!(session_id(b"{\"sessionId\":\"\"}"), None);
    }
}
