//! The number of parameter values a [`Transformer2DConfig`] describes, so that a config can
//! be checked against its weights file before the model is allocated.

use std::path::Path;

use vq_weights::WeightsError;

use crate::{FeedForwardActivation, Transformer2DConfig};

impl Transformer2DConfig {
    /// Number of parameter values of [`init`](Self::init)'s model, or `None` if the count
    /// overflows.
    pub fn num_parameters(&self) -> Option<u64> {
        self.count(&self.size_fields().map(|(_, v)| v))
    }

    /// Fails, naming the size field most to blame, when the config describes more than
    /// twice the parameter values the weights file holds (reads only the file's index).
    pub fn check_against_weights(&self, config: &Path, weights: &Path) -> Result<(), WeightsError> {
        vq_weights::check_parameter_count(config, weights, &self.size_fields(), |v| self.count(v))
    }

    fn size_fields(&self) -> [(&'static str, usize); 7] {
        [
            ("num_vector_embeds", self.num_vector_embeds),
            ("sample_size", self.sample_size),
            ("num_embeds_ada_norm", self.num_embeds_ada_norm),
            ("cross_attention_dim", self.cross_attention_dim),
            ("num_attention_heads", self.num_attention_heads),
            ("attention_head_dim", self.attention_head_dim),
            ("num_layers", self.num_layers),
        ]
    }

    /// Parameters of the model with the size fields of [`size_fields`](Self::size_fields)
    /// and this config's activation and attention bias.
    fn count(&self, fields: &[usize]) -> Option<u64> {
        let [classes, side, timesteps, context, heads, head_dim, layers] =
            <[usize; 7]>::try_from(fields).ok()?.map(|v| v as u64);
        let d = heads.checked_mul(head_dim)?;
        let linear =
            |d_in: u64, d_out: u64, bias: bool| d_in.checked_mul(d_out)?.checked_add(if bias { d_out } else { 0 });
        let bias = self.attention_bias;
        // q/k/v (bias per `attention_bias`) and the output projection (always biased).
        let attention = |d_kv: u64| {
            linear(d, d, bias)?.checked_add(linear(d_kv, d, bias)?.checked_mul(2)?)?.checked_add(linear(d, d, true)?)
        };
        // AdaLayerNorm: a timestep embedding table and a Linear D → 2D.
        let ada_norm = timesteps.checked_mul(d)?.checked_add(linear(d, d.checked_mul(2)?, true)?)?;
        let inner = d.checked_mul(4)?;
        let gated = matches!(self.activation_fn, FeedForwardActivation::Geglu | FeedForwardActivation::Swiglu);
        let proj_in = linear(d, if gated { inner.checked_mul(2)? } else { inner }, true)?;
        let feed_forward = proj_in.checked_add(linear(inner, d, true)?)?;
        let block = [ada_norm, attention(d)?, ada_norm, attention(context)?, d.checked_mul(2)?, feed_forward]
            .into_iter()
            .try_fold(0u64, u64::checked_add)?;
        let embeddings = classes.checked_add(side.checked_mul(2)?)?.checked_mul(d)?;
        // norm_out (affine LayerNorm) and `out` (D → K = num_vector_embeds − 1).
        let output = d.checked_mul(2)?.checked_add(linear(d, classes.checked_sub(1)?, true)?)?;
        block.checked_mul(layers)?.checked_add(embeddings)?.checked_add(output)
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::module::Module;

    use crate::{FeedForwardActivation, Transformer2DConfig};

    #[test]
    fn the_count_is_the_built_models_parameter_count() {
        let tiny = Transformer2DConfig::new(32, 8, 100, 16)
            .with_num_attention_heads(3)
            .with_attention_head_dim(8)
            .with_num_layers(2)
            .with_attention_bias(true)
            .with_activation_fn(FeedForwardActivation::GegluApproximate);
        // The fixture's transformer (fixtures/README.md): 34,759 parameters.
        assert_eq!(tiny.num_parameters(), Some(34_759));
        for activation in [FeedForwardActivation::Geglu, FeedForwardActivation::Gelu, FeedForwardActivation::Swiglu] {
            for bias in [false, true] {
                let config = tiny.clone().with_activation_fn(activation).with_attention_bias(bias).with_num_layers(3);
                let model = config.init::<NdArray>(&Default::default()).unwrap();
                assert_eq!(config.num_parameters(), Some(model.num_params() as u64), "{activation:?} bias {bias}");
            }
        }
    }
}
