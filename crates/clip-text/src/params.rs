//! The number of parameter values a [`CLIPTextConfig`] describes, so that a config can be
//! checked against its weights file before the model is allocated.

use std::path::Path;

use vq_weights::WeightsError;

use crate::CLIPTextConfig;

impl CLIPTextConfig {
    /// Number of parameter values of [`init`](Self::init)'s model (embeddings, encoder layers,
    /// final LayerNorm), or `None` if the count overflows.
    pub fn num_parameters(&self) -> Option<u64> {
        count(&self.size_fields().map(|(_, v)| v))
    }

    /// Fails, naming the size field most to blame, when the config describes more than
    /// twice the parameter values the weights file holds (reads only the file's index).
    pub fn check_against_weights(&self, config: &Path, weights: &Path) -> Result<(), WeightsError> {
        vq_weights::check_parameter_count(config, weights, &self.size_fields(), count)
    }

    fn size_fields(&self) -> [(&'static str, usize); 5] {
        [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("max_position_embeddings", self.max_position_embeddings),
        ]
    }
}

/// Parameters of a text tower with the size fields of [`CLIPTextConfig::size_fields`].
fn count(fields: &[usize]) -> Option<u64> {
    let [vocab, h, i, layers, positions] = <[usize; 5]>::try_from(fields).ok()?.map(|v| v as u64);
    // q/k/v/out projections with biases, two LayerNorms, fc1 (H → I) and fc2 (I → H).
    let attention = h.checked_mul(h)?.checked_add(h)?.checked_mul(4)?;
    let mlp = h.checked_mul(i)?.checked_mul(2)?.checked_add(i)?.checked_add(h)?;
    let layer = attention.checked_add(mlp)?.checked_add(h.checked_mul(4)?)?;
    let embeddings = vocab.checked_add(positions)?.checked_mul(h)?;
    layer.checked_mul(layers)?.checked_add(embeddings)?.checked_add(h.checked_mul(2)?)
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::module::Module;

    use crate::{CLIPTextConfig, HiddenAct};

    #[test]
    fn the_count_is_the_built_models_parameter_count() {
        let tiny = CLIPTextConfig {
            vocab_size: 49408,
            hidden_size: 16,
            intermediate_size: 37,
            num_hidden_layers: 3,
            num_attention_heads: 4,
            max_position_embeddings: 77,
            hidden_act: HiddenAct::QuickGelu,
            layer_norm_eps: 1e-5,
            eos_token_id: 2,
        };
        // The fixture's text encoder (fixtures/README.md): 798,959 parameters.
        assert_eq!(tiny.num_parameters(), Some(798_959));
        for config in [
            tiny.clone(),
            CLIPTextConfig {
                vocab_size: 100,
                hidden_size: 24,
                intermediate_size: 5,
                num_hidden_layers: 1,
                ..tiny.clone()
            },
            CLIPTextConfig { max_position_embeddings: 9, num_hidden_layers: 4, ..tiny.clone() },
        ] {
            let model = config.init::<NdArray>(&Default::default()).unwrap();
            assert_eq!(config.num_parameters(), Some(model.num_params() as u64), "{config:?}");
        }
        let huge = CLIPTextConfig { hidden_size: usize::MAX / 2, ..tiny };
        assert_eq!(huge.num_parameters(), None);
    }
}
