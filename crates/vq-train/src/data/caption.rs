//! Captions: what a caption says about a scene ([`Prompt`]), writing it as text and parsing it
//! back.

use serde::{Deserialize, Serialize};

use super::scene::Scene;
use super::vocab::{article, Color, Position, Shape, Size};
use crate::TrainError;

/// What a caption says about one object: shape and colour always, size and position optionally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectPrompt {
    /// The named shape.
    pub shape: Shape,
    /// The named colour.
    pub color: Color,
    /// The named size, if the caption gives one.
    pub size: Option<Size>,
    /// The named grid cell, if the caption gives one.
    pub position: Option<Position>,
}

/// What a caption says about a scene: its objects in order, and optionally the background.
///
/// Grammar (words separated by single spaces, lower case):
///
/// ```text
/// caption    := object ("and" object)* ["on" article colour "background"]
/// object     := article [size] colour shape [position]
/// article    := "a" | "an"          (written as English requires: "an orange …")
/// position   := "in the top left" | "at the top" | "in the top right" | "on the left"
///             | "in the center" | "on the right" | "in the bottom left" | "at the bottom"
///             | "in the bottom right"
/// ```
///
/// Examples: "a small red circle in the top left on a blue background",
/// "a red circle and a blue square", "an orange triangle at the bottom".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Prompt {
    /// The named objects (at least one).
    pub objects: Vec<ObjectPrompt>,
    /// The named background colour, if the caption gives one.
    pub background: Option<Color>,
}

/// Which optional attributes a caption mentions (the same choice for every object).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mentions {
    /// Whether object sizes are named.
    pub size: bool,
    /// Whether object positions are named.
    pub position: bool,
    /// Whether the background colour is named.
    pub background: bool,
}

impl Mentions {
    /// Every attribute mentioned.
    pub const ALL: Mentions = Mentions { size: true, position: true, background: true };
}

impl Prompt {
    /// The prompt describing `scene` with the attributes chosen by `mentions`.
    pub fn describe(scene: &Scene, mentions: Mentions) -> Self {
        let objects = scene
            .objects
            .iter()
            .map(|object| ObjectPrompt {
                shape: object.shape,
                color: object.color,
                size: mentions.size.then_some(object.size),
                position: mentions.position.then_some(object.position),
            })
            .collect();
        Self { objects, background: mentions.background.then_some(scene.background) }
    }

    /// Whether `scene` shows exactly what the prompt says: the same number of objects, in
    /// order, each matching every named attribute, and the named background.
    pub fn matches(&self, scene: &Scene) -> bool {
        self.objects.len() == scene.objects.len()
            && self.background.is_none_or(|bg| bg == scene.background)
            && self.objects.iter().zip(&scene.objects).all(|(named, object)| {
                named.shape == object.shape
                    && named.color == object.color
                    && named.size.is_none_or(|size| size == object.size)
                    && named.position.is_none_or(|position| position == object.position)
            })
    }

    /// The caption text.
    pub fn caption(&self) -> String {
        let mut phrases: Vec<String> = Vec::with_capacity(self.objects.len());
        for object in &self.objects {
            let mut words: Vec<&str> = Vec::with_capacity(6);
            if let Some(size) = object.size {
                words.push(size.word());
            }
            words.extend([object.color.word(), object.shape.word()]);
            if let Some(position) = object.position {
                words.push(position.phrase());
            }
            phrases.push(format!("{} {}", article(words[0]), words.join(" ")));
        }
        let mut caption = phrases.join(" and ");
        if let Some(background) = self.background {
            let word = background.word();
            caption.push_str(&format!(" on {} {word} background", article(word)));
        }
        caption
    }

    /// Parses a caption of the grammar in the module docs. Case and surrounding white space are
    /// ignored, and so is one trailing full stop; either article is accepted before any word.
    pub fn parse(caption: &str) -> Result<Self, TrainError> {
        let lower = caption.trim().to_lowercase();
        let text = lower.strip_suffix('.').unwrap_or(&lower);
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut parser = Parser { caption, words: &words, index: 0 };
        let mut objects = vec![parser.object()?];
        while parser.accept("and") {
            objects.push(parser.object()?);
        }
        let background = if parser.accept("on") {
            parser.article()?;
            let color = parser.word("a colour", Color::from_word)?;
            parser.word("\"background\"", |w| (w == "background").then_some(()))?;
            Some(color)
        } else {
            None
        };
        if parser.index < words.len() {
            return Err(parser.error("\"and\", \"on\" or the end of the caption"));
        }
        Ok(Self { objects, background })
    }
}

/// A cursor over a caption's words.
struct Parser<'a> {
    caption: &'a str,
    words: &'a [&'a str],
    index: usize,
}

impl Parser<'_> {
    fn peek(&self, offset: usize) -> Option<&str> {
        self.words.get(self.index + offset).copied()
    }

    fn accept(&mut self, word: &str) -> bool {
        let found = self.peek(0) == Some(word);
        self.index += usize::from(found);
        found
    }

    fn error(&self, expected: &'static str) -> TrainError {
        TrainError::Caption {
            caption: self.caption.to_string(),
            index: self.index,
            expected,
            found: self.peek(0).unwrap_or("").to_string(),
        }
    }

    /// Consumes one word that `parse` maps to a value.
    fn word<T>(&mut self, expected: &'static str, parse: impl Fn(&str) -> Option<T>) -> Result<T, TrainError> {
        let value = self.peek(0).and_then(parse).ok_or_else(|| self.error(expected))?;
        self.index += 1;
        Ok(value)
    }

    fn article(&mut self) -> Result<(), TrainError> {
        self.word("\"a\" or \"an\"", |w| matches!(w, "a" | "an").then_some(()))
    }

    fn object(&mut self) -> Result<ObjectPrompt, TrainError> {
        self.article()?;
        let size = self.peek(0).and_then(Size::from_word);
        self.index += usize::from(size.is_some());
        let color = self.word("a size or a colour", Color::from_word)?;
        let shape = self.word("a shape", Shape::from_word)?;
        // "on the …" starts a position, "on a …" the background.
        let starts_position =
            matches!(self.peek(0), Some("in" | "at")) || (self.peek(0) == Some("on") && self.peek(1) == Some("the"));
        let position = if starts_position { Some(self.position()?) } else { None };
        Ok(ObjectPrompt { shape, color, size, position })
    }

    fn position(&mut self) -> Result<Position, TrainError> {
        for position in Position::ALL {
            let phrase: Vec<&str> = position.phrase().split(' ').collect();
            if self.words[self.index..].starts_with(&phrase) {
                self.index += phrase.len();
                return Ok(position);
            }
        }
        Err(self.error("a position such as \"in the top left\" or \"at the top\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::scene::ObjectSpec;

    fn object(shape: Shape, color: Color, size: Size, position: Position) -> ObjectSpec {
        ObjectSpec { shape, color, size, position }
    }

    #[test]
    fn writes_the_documented_examples() {
        let scene = Scene {
            background: Color::Blue,
            objects: vec![object(Shape::Circle, Color::Red, Size::Small, Position::TopLeft)],
        };
        assert_eq!(
            Prompt::describe(&scene, Mentions::ALL).caption(),
            "a small red circle in the top left on a blue background"
        );
        let two = Scene {
            background: Color::White,
            objects: vec![
                object(Shape::Circle, Color::Red, Size::Large, Position::Center),
                object(Shape::Square, Color::Blue, Size::Small, Position::Bottom),
            ],
        };
        let none = Mentions { size: false, position: false, background: false };
        assert_eq!(Prompt::describe(&two, none).caption(), "a red circle and a blue square");
        assert_eq!(
            Prompt::describe(&two, Mentions::ALL).caption(),
            "a large red circle in the center and a small blue square at the bottom on a white background"
        );
        let orange = Scene {
            background: Color::Orange,
            objects: vec![object(Shape::Diamond, Color::Orange, Size::Large, Position::Right)],
        };
        let no_size = Mentions { size: false, ..Mentions::ALL };
        assert_eq!(
            Prompt::describe(&orange, no_size).caption(),
            "an orange diamond on the right on an orange background"
        );
    }

    #[test]
    fn every_attribute_round_trips_through_caption_and_parse() {
        for shape in Shape::ALL {
            for color in Color::ALL {
                for size in Size::ALL {
                    for position in Position::ALL {
                        let scene = Scene {
                            background: Color::ALL[(color as usize + 3) % 8],
                            objects: vec![
                                object(shape, color, size, position),
                                object(Shape::ALL[(shape as usize + 1) % 4], color, size, Position::Center),
                            ],
                        };
                        for bits in 0..8 {
                            let mentions =
                                Mentions { size: bits & 1 != 0, position: bits & 2 != 0, background: bits & 4 != 0 };
                            let prompt = Prompt::describe(&scene, mentions);
                            let caption = prompt.caption();
                            assert_eq!(Prompt::parse(&caption).as_ref(), Ok(&prompt), "{caption}");
                            assert!(prompt.matches(&scene));
                            assert_eq!(caption.contains(size.word()), mentions.size, "{caption}");
                            assert_eq!(caption.contains(position.phrase()), mentions.position, "{caption}");
                            assert_eq!(caption.ends_with("background"), mentions.background, "{caption}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn parse_is_lenient_on_case_and_stop_but_names_the_bad_word() {
        let prompt = Prompt::parse("  A Red Circle.").unwrap();
        assert_eq!(
            prompt,
            Prompt {
                objects: vec![ObjectPrompt { shape: Shape::Circle, color: Color::Red, size: None, position: None }],
                background: None,
            }
        );
        let error = Prompt::parse("a red hexagon").unwrap_err();
        assert_eq!(
            error,
            TrainError::Caption {
                caption: "a red hexagon".into(),
                index: 2,
                expected: "a shape",
                found: "hexagon".into(),
            }
        );
        assert!(matches!(Prompt::parse("a red circle on the middle"), Err(TrainError::Caption { index: 3, .. })));
        assert!(matches!(Prompt::parse("a red circle on a blue"), Err(TrainError::Caption { index: 6, .. })));
        assert!(matches!(Prompt::parse(""), Err(TrainError::Caption { index: 0, .. })));
        assert!(matches!(Prompt::parse("a red circle blue"), Err(TrainError::Caption { index: 3, .. })));
    }

    #[test]
    fn matches_rejects_any_differing_named_attribute() {
        let scene = Scene {
            background: Color::Black,
            objects: vec![object(Shape::Square, Color::Green, Size::Large, Position::Left)],
        };
        let prompt = Prompt::describe(&scene, Mentions::ALL);
        let mut wrong = prompt.clone();
        wrong.objects[0].position = Some(Position::Right);
        assert!(!wrong.matches(&scene));
        let mut wrong = prompt.clone();
        wrong.background = Some(Color::White);
        assert!(!wrong.matches(&scene));
        let mut wrong = prompt;
        wrong.objects[0].size = Some(Size::Small);
        assert!(!wrong.matches(&scene));
    }
}
