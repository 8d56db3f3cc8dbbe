//! What an error may tell a tenant. Upstream error bodies are echoed to the caller (they
//! say why a request was refused), but an upstream may quote credentials back (OpenAI
//! shows part of a wrong key; a proxy may echo a header), and host errors may name
//! files on the gateway's disk. Both are replaced before a message leaves the gateway.

use std::sync::LazyLock;

use regex::Regex;

/// Credential shapes, each replaced by its prefix and `***`.
static CREDENTIALS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        // API keys of the common providers: sk-..., sk-proj-..., sk-ant-..., pk-/rk-.
        r"\b(?P<k>(?:sk|pk|rk)-)[A-Za-z0-9_\-]{6,}",
        // Authorization schemes.
        r"|(?i)(?P<b>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=\-]{6,}",
        // key = value, "api_key": "value", x-api-key: value, token=..., password: ...
        r#"|(?i)(?P<f>\b(?:api[_-]?key|x-api-key|access[_-]?token|secret|password|token)"?\s*[:=]\s*"?)[^\s",;&}]{4,}"#,
        // AWS access key ids.
        r"|\b(?P<a>AKIA)[0-9A-Z]{16}\b",
        // Credentials in URLs.
        r"|(?P<u>://)[^/\s:@]+:[^/\s@]+@",
    ))
    .expect("valid pattern")
});

/// Absolute paths of two segments or more (`/home/op/.arbiter/traces.db`).
static PATHS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s(`'\x22=])(?P<p>/(?:[\w.\-]+/)+[\w.\-]+)").expect("valid pattern")
});

/// `text` with anything shaped like a credential replaced, and absolute paths elided.
pub fn scrub(text: &str) -> String {
    let text = CREDENTIALS.replace_all(text, |c: &regex::Captures| {
        let keep = ["k", "b", "f", "a", "u"]
            .iter()
            .find_map(|n| c.name(n))
            .map_or("", |m| m.as_str());
        format!("{keep}***")
    });
    PATHS
        .replace_all(&text, |c: &regex::Captures| {
            let whole = &c[0];
            let path = &c["p"];
            format!("{}<path>", &whole[..whole.len() - path.len()])
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn credentials_are_replaced() {
        for (given, hidden) in [
            (
                "Incorrect API key provided: sk-proj-abcdEFGH1234. You can find",
                "sk-proj-abcdEFGH1234",
            ),
            ("key sk-ant-api03-xyzXYZ0123 refused", "xyzXYZ0123"),
            ("header Authorization: Bearer eyJhbGciOi.J9x", "eyJhbGciOi"),
            (r#"{"api_key": "hunter2hunter2"}"#, "hunter2"),
            ("x-api-key: 0123456789abcdef", "0123456789abcdef"),
            ("?token=abcdef123456&x=1", "abcdef123456"),
            ("id AKIAABCDEFGHIJKLMNOP used", "ABCDEFGHIJKLMNOP"),
            ("via https://user:p4ss@proxy.internal/v1", "p4ss"),
        ] {
            let out = scrub(given);
            assert!(!out.contains(hidden), "{given} -> {out}");
            assert!(out.contains("***"), "{given} -> {out}");
        }
    }

    #[test]
    fn paths_are_elided_and_plain_text_kept() {
        let out = scrub("cannot open /home/op/.arbiter/traces.db: denied");
        assert_eq!(out, "cannot open <path>: denied");
        let out = scrub("plugin `x` failed (`/srv/plugins/x.wasm`)");
        assert_eq!(out, "plugin `x` failed (`<path>`)");
        for plain in [
            "model `gpt-4o-mini` failed: upstream returned HTTP 400: max_tokens is too large",
            "the answer is 2/3 or 4/5",
            "rate limited; retry in 20s",
        ] {
            assert_eq!(scrub(plain), plain);
        }
    }
}
