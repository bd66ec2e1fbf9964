//! Checking a config against its weights file before the model is built.
//!
//! A model is allocated from its config before the weights are loaded into it. A config that
//! says `num_layers: 1000000` would allocate gigabytes for a model no weights file fills; the
//! parameter count the config implies is compared with what the file holds first, reading
//! only the file's index. A model up to twice the file's size is let through: building it
//! costs no more than reading the file, and loading then names the exact tensor that is
//! missing or misshapen, a more precise error than a count.

use std::path::Path;

use crate::files::open_checkpoint;
use crate::WeightsError;

/// Checks that the model the config at `config` describes has at most twice as many
/// parameter values as the weights file at `weights` holds.
///
/// `fields` are the config's size fields (name, value) and `count` gives the number of
/// parameter values of a model with those field values (same order), `None` on overflow.
/// When the config needs more, the error names the field that contributes most: the one whose
/// reduction to 1 lowers the count most.
pub fn check_parameter_count<F>(
    config: &Path,
    weights: &Path,
    fields: &[(&str, usize)],
    count: F,
) -> Result<(), WeightsError>
where
    F: Fn(&[usize]) -> Option<u64>,
{
    let values: Vec<usize> = fields.iter().map(|(_, v)| *v).collect();
    let required = count(&values).unwrap_or(u64::MAX);
    let held = open_checkpoint(weights)?.total_elements();
    if required <= held.saturating_mul(2) {
        return Ok(());
    }
    let reduced = |i: usize| {
        let mut v = values.clone();
        v[i] = 1;
        count(&v).unwrap_or(u64::MAX)
    };
    let culprit = (0..fields.len()).min_by_key(|&i| reduced(i)).unwrap_or(0);
    let (field, value) = fields.get(culprit).map_or(("?", 0), |(f, v)| (*f, *v));
    Err(WeightsError::ConfigExceedsWeights {
        config: config.into(),
        weights: weights.into(),
        field: field.to_string(),
        value,
        required,
        held,
    })
}
