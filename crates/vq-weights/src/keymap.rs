use regex::Regex;

use crate::WeightsError;

/// Maps checkpoint keys to burn module paths.
///
/// Rules are `(regex, replacement)` pairs applied in order, each with `replace_all`
/// (replacements may use `$1`-style groups). Keys matching an `ignore` pattern are dropped
/// before mapping (buffers such as `text_model.embeddings.position_ids`).
#[derive(Debug, Clone, Default)]
pub struct KeyMap {
    rules: Vec<(String, String)>,
    ignore: Vec<String>,
}

impl KeyMap {
    /// A key map with the given `(regex, replacement)` rules.
    pub fn new(rules: &[(&str, &str)]) -> Self {
        Self { rules: rules.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(), ignore: Vec::new() }
    }

    /// Also drop the checkpoint keys matching any of these regexes.
    pub fn ignore(mut self, patterns: &[&str]) -> Self {
        self.ignore.extend(patterns.iter().map(|p| p.to_string()));
        self
    }

    pub(crate) fn compile(&self) -> Result<CompiledKeyMap, WeightsError> {
        let re = |p: &String| {
            Regex::new(p).map_err(|e| WeightsError::Pattern { pattern: p.clone(), message: e.to_string() })
        };
        Ok(CompiledKeyMap {
            rules: self.rules.iter().map(|(p, r)| Ok((re(p)?, r.clone()))).collect::<Result<_, WeightsError>>()?,
            ignore: self.ignore.iter().map(re).collect::<Result<_, _>>()?,
        })
    }
}

pub(crate) struct CompiledKeyMap {
    rules: Vec<(Regex, String)>,
    ignore: Vec<Regex>,
}

impl CompiledKeyMap {
    /// The module path of a checkpoint key, or `None` when the key is ignored.
    pub(crate) fn map(&self, key: &str) -> Option<String> {
        if self.ignore.iter().any(|r| r.is_match(key)) {
            return None;
        }
        let mut path = key.to_string();
        for (re, replacement) in &self.rules {
            path = re.replace_all(&path, replacement.as_str()).into_owned();
        }
        Some(path)
    }
}
