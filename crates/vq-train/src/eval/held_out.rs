//! Accuracy by held-out combination: which of the pairings never trained on a model draws wrong,
//! and how the objects beside them fare.

use super::score::{EvalReport, ObjectScore, Tally};
use crate::data::HeldOut;

/// Shape and colour accuracy of one group of named objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupScore {
    /// Shapes drawn right.
    pub shape: Tally,
    /// Colours drawn right.
    pub color: Tally,
}

impl EvalReport {
    /// Shape and colour accuracy of the named objects in each combination of `held_out` — the
    /// (colour, shape) pairs, then the (shape, position) pairs, labelled as a caption would say
    /// them ("purple diamond", "diamond on the left") — and last of the objects in none
    /// ("other objects"). An object in two combinations counts in both; an object whose
    /// position the prompt does not name is in no (shape, position) combination.
    pub fn by_held_out_combination(&self, held_out: &HeldOut) -> Vec<(String, GroupScore)> {
        let color_shape = held_out.color_shape.iter().map(|&(color, shape)| {
            let label = format!("{} {}", color.word(), shape.word());
            (label, self.group(|o| o.named_color == color && o.named_shape == shape))
        });
        let shape_position = held_out.shape_position.iter().map(|&(shape, position)| {
            let label = format!("{} {}", shape.word(), position.phrase());
            (label, self.group(|o| o.named_shape == shape && o.named_position == Some(position)))
        });
        let in_none = |o: &ObjectScore| {
            !held_out.color_shape.contains(&(o.named_color, o.named_shape))
                && !o.named_position.is_some_and(|p| held_out.shape_position.contains(&(o.named_shape, p)))
        };
        color_shape.chain(shape_position).chain([("other objects".to_string(), self.group(in_none))]).collect()
    }

    /// [`EvalReport::by_held_out_combination`] as text: one row per combination with its object
    /// count and shape and colour accuracy.
    pub fn held_out_table(&self, held_out: &HeldOut) -> String {
        let mut text =
            format!("{:>26} | {:>7} | {:>17} | {:>17}\n", "held-out combination", "objects", "shape", "colour");
        let cell = |t: Tally| match t.total {
            0 => format!("{:>17}", "-"),
            _ => format!("{:6.1} % ({:>3}/{:<3})", 100.0 * t.accuracy(), t.correct, t.total),
        };
        for (label, group) in self.by_held_out_combination(held_out) {
            text +=
                &format!("{label:>26} | {:>7} | {} | {}\n", group.shape.total, cell(group.shape), cell(group.color));
        }
        text
    }

    fn group(&self, member: impl Fn(&ObjectScore) -> bool) -> GroupScore {
        let members = || self.objects.iter().filter(|o| member(o));
        GroupScore {
            shape: members().map(ObjectScore::shape).collect(),
            color: members().map(ObjectScore::color).collect(),
        }
    }
}
