//! The warning for prompt words the model never learned (its `vocabulary.json`): a model trained
//! on a closed vocabulary draws *something* for any prompt, so the words it cannot know are named.

/// `warning: the model never learned "photo", "cat"` for the words of `unknown` (one list over
/// all prompts, in order, each once); `None` when there are none.
pub fn unknown_words_warning(unknown: impl IntoIterator<Item = String>) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    for word in unknown {
        if !words.contains(&word) {
            words.push(word);
        }
    }
    match words.is_empty() {
        true => None,
        false => {
            let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
            Some(format!("warning: the model never learned {}", quoted.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_are_quoted_once_each_in_order() {
        let words = ["photo", "cat", "photo", "dog"].map(String::from);
        assert_eq!(
            unknown_words_warning(words).as_deref(),
            Some(r#"warning: the model never learned "photo", "cat", "dog""#)
        );
        assert_eq!(unknown_words_warning(Vec::new()), None);
    }
}
