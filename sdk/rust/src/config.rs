use std::str::FromStr;

use crate::types::PluginError;

/// The plugin's settings for one pipeline: string keys and values as the operator wrote
/// them in the pipeline configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pairs: Vec<(String, String)>,
}

impl Config {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Config { pairs }
    }

    /// The last value given for `key` (later settings override earlier ones).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or an `invalid-config` error naming it.
    pub fn require(&self, key: &str) -> Result<&str, PluginError> {
        self.get(key)
            .ok_or_else(|| PluginError::InvalidConfig(format!("missing required setting `{key}`")))
    }

    /// Parses `key` with [`FromStr`], falling back to `default` when it is absent.
    pub fn parse_or<T: FromStr>(&self, key: &str, default: T) -> Result<T, PluginError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e| PluginError::InvalidConfig(format!("setting `{key}` = {raw:?}: {e}"))),
        }
    }

    /// A comma-separated list setting; empty items are skipped.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Fails with `invalid-config` when a key outside `known` is present, so typos in a
    /// pipeline configuration are caught at load time rather than silently ignored.
    pub fn deny_unknown(&self, known: &[&str]) -> Result<(), PluginError> {
        match self
            .pairs
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            Some((k, _)) => Err(PluginError::InvalidConfig(format!(
                "unknown setting `{k}` (known: {})",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}
