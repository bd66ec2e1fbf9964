//! `vocabulary.json`: the words a pipeline's model was trained on, so that a prompt's other words
//! can be named.
//!
//! A CLIP tokenizer turns any text into tokens — a word it has no merge for becomes byte tokens
//! — so a model trained on a closed vocabulary (the shipped shapes model knows 27 words) draws
//! *something* for "a photo of a cat" without a sign that it understood nothing. The tokenizer's
//! own `vocab.json` cannot tell: it holds every byte and merge, also of words never trained on.
//! This project's trainer writes the caption words into the pipeline folder; a folder without the
//! file (diffusers' pipelines, trained on open text) names no word as unknown.
//!
//! ```json
//! { "words": ["a", "and", "background", "blue", "circle"] }
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::components::read;
use crate::{PipelineError, VQDiffusionPipeline};

/// The file's name at the root of a pipeline folder.
pub const VOCABULARY_FILE: &str = "vocabulary.json";

/// The words a model learned, lower case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    /// The words, sorted and unique.
    pub words: BTreeSet<String>,
}

impl Vocabulary {
    /// The vocabulary of `words`, lower-cased.
    pub fn new<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> Self {
        Self { words: words.into_iter().map(|w| w.as_ref().to_lowercase()).collect() }
    }

    /// Reads `dir/vocabulary.json`; `None` when the folder has no such file. Every entry must be
    /// one word as [`prompt_words`] splits a prompt (letters and digits), or the file is refused
    /// naming the entry: such an entry could never match.
    pub fn from_dir(dir: &Path) -> Result<Option<Self>, PipelineError> {
        let path = dir.join(VOCABULARY_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let invalid = |message: String| PipelineError::Config { path: path.clone(), message };
        let vocabulary: Self = serde_json::from_str(&read(&path)?).map_err(|e| invalid(e.to_string()))?;
        if let Some(bad) = vocabulary.words.iter().find(|w| prompt_words(w) != [w.as_str()] || w.to_lowercase() != **w)
        {
            return Err(invalid(format!("words: {bad:?} is not one lower-case word of letters and digits")));
        }
        Ok(Some(vocabulary))
    }

    /// Writes `dir/vocabulary.json` (pretty-printed, one word a line).
    pub fn write(&self, dir: &Path) -> Result<(), PipelineError> {
        let path = dir.join(VOCABULARY_FILE);
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| PipelineError::Config { path: path.clone(), message: e.to_string() })?;
        std::fs::write(&path, text + "\n").map_err(|source| PipelineError::Io { path, source })
    }

    /// The words of `prompt` that are not in the vocabulary, each once, in prompt order.
    pub fn unknown_words(&self, prompt: &str) -> Vec<String> {
        let mut unknown: Vec<String> = Vec::new();
        for word in prompt_words(&prompt.to_lowercase()) {
            if !self.words.contains(word) && !unknown.iter().any(|u| u == word) {
                unknown.push(word.to_string());
            }
        }
        unknown
    }
}

/// The words of a text as the vocabulary counts them: maximal runs of letters and digits
/// (punctuation and white space separate them; CLIP's tokenizer splits there too).
pub fn prompt_words(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect()
}

impl<B: Backend> VQDiffusionPipeline<B> {
    /// The words of `prompt` this pipeline's model never learned (its [`VOCABULARY_FILE`]), each
    /// once, lower case, in prompt order; none for a model without that file.
    ///
    /// ```no_run
    /// # use vq_pipeline::{LoadOptions, VQDiffusionPipeline};
    /// # let pipeline = VQDiffusionPipeline::<burn::backend::NdArray>::from_pretrained("models/shapes", &LoadOptions::default(), &Default::default())?;
    /// assert_eq!(pipeline.unknown_words("A photo of a red cat."), ["photo", "of", "cat"]);
    /// # Ok::<(), vq_pipeline::PipelineError>(())
    /// ```
    pub fn unknown_words(&self, prompt: &str) -> Vec<String> {
        self.vocabulary.as_ref().map(|v| v.unknown_words(prompt)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("vq-vocabulary-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn unknown_words_are_named_once_in_prompt_order_whatever_their_case() {
        let vocabulary = Vocabulary::new(["a", "red", "circle", "on", "blue", "background"]);
        assert_eq!(vocabulary.unknown_words("a photo of a cat"), ["photo", "of", "cat"]);
        assert_eq!(vocabulary.unknown_words("A Red CIRCLE, on a blue background."), Vec::<String>::new());
        assert_eq!(vocabulary.unknown_words("2 red circles; a cat and a Cat"), ["2", "circles", "cat", "and"]);
        assert_eq!(vocabulary.unknown_words("  ,.! "), Vec::<String>::new());
        assert_eq!(vocabulary.unknown_words("a rouge cercle élégant"), ["rouge", "cercle", "élégant"]);
    }

    #[test]
    fn words_split_at_everything_but_letters_and_digits() {
        assert_eq!(
            prompt_words("a red-circle,on\ta 3x3 grid's"),
            ["a", "red", "circle", "on", "a", "3x3", "grid", "s"]
        );
    }

    #[test]
    fn a_written_vocabulary_reads_back_and_a_folder_without_one_has_none() {
        let dir = scratch("roundtrip");
        assert_eq!(Vocabulary::from_dir(&dir).unwrap(), None);
        let vocabulary = Vocabulary::new(["Red", "circle", "a", "red"]);
        vocabulary.write(&dir).unwrap();
        let read = Vocabulary::from_dir(&dir).unwrap().expect("written");
        assert_eq!(read.words.iter().collect::<Vec<_>>(), ["a", "circle", "red"]);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn bad_files_are_refused_naming_the_file_and_the_entry() {
        for (name, text, expected) in [
            ("two-words", r#"{"words": ["a", "red circle"]}"#, r#""red circle" is not one lower-case word"#),
            ("upper", r#"{"words": ["Red"]}"#, r#""Red" is not one lower-case word"#),
            ("empty", r#"{"words": [""]}"#, r#""" is not one lower-case word"#),
            ("field", r#"{"word": ["a"]}"#, "unknown field `word`"),
            ("json", "[", "EOF while parsing"),
        ] {
            let dir = scratch(name);
            std::fs::write(dir.join(VOCABULARY_FILE), text).unwrap();
            let error = Vocabulary::from_dir(&dir).unwrap_err().to_string();
            assert!(error.contains(VOCABULARY_FILE) && error.contains(expected), "{name}: {error}");
            std::fs::remove_dir_all(&dir).ok();
        }
    }
}
