//! The number of parameter values a [`VQModelConfig`] describes, so that a config can be
//! checked against its weights file before the model is allocated.

use std::path::Path;

use vq_weights::WeightsError;

use crate::config::VQModelConfig;

impl VQModelConfig {
    /// Number of parameter values of [`init`](Self::init)'s model, or `None` if the count
    /// overflows or the block types are invalid.
    pub fn num_parameters(&self) -> Option<u64> {
        let values: Vec<usize> = self.size_fields().into_iter().map(|(_, v)| v).collect();
        self.count(&values)
    }

    /// Fails, naming the size field most to blame, when the config describes more than
    /// twice the parameter values the weights file holds (reads only the file's index).
    pub fn check_against_weights(&self, config: &Path, weights: &Path) -> Result<(), WeightsError> {
        let fields = self.size_fields();
        let fields: Vec<(&str, usize)> = fields.iter().map(|(f, v)| (f.as_str(), *v)).collect();
        vq_weights::check_parameter_count(config, weights, &fields, |v| self.count(v))
    }

    /// The size fields: six scalars, then one per `block_out_channels` entry.
    fn size_fields(&self) -> Vec<(String, usize)> {
        let scalars = [
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("latent_channels", self.latent_channels),
            ("num_vq_embeddings", self.num_vq_embeddings),
            ("vq_embed_dim", self.embed_dim()),
            ("layers_per_block", self.layers_per_block),
        ];
        let channels =
            self.block_out_channels.iter().enumerate().map(|(i, &c)| (format!("block_out_channels[{i}]"), c));
        scalars.into_iter().map(|(f, v)| (f.to_string(), v)).chain(channels).collect()
    }

    /// Parameters of the model with the size fields of [`size_fields`](Self::size_fields) and
    /// this config's block types and mid-block attention.
    fn count(&self, fields: &[usize]) -> Option<u64> {
        let v: Vec<u64> = fields.iter().map(|&v| v as u64).collect();
        let [in_ch, out_ch, latent, codes, embed, layers] = <[u64; 6]>::try_from(v.get(..6)?).ok()?;
        let channels = v.get(6..)?;
        let (first, last) = (*channels.first()?, *channels.last()?);
        let down = self.down_blocks().ok()?;
        let up = self.up_blocks().ok()?;
        let sum = |terms: &[Option<u64>]| terms.iter().try_fold(0u64, |acc, t| acc.checked_add((*t)?));
        let mul = |a: u64, b: u64| a.checked_mul(b);
        // 3×3 convolution with bias, GroupNorm (affine), resnet, attention block.
        let conv3 = |i: u64, o: u64| mul(i, o)?.checked_mul(9)?.checked_add(o);
        let norm = |c: u64| mul(c, 2);
        let resnet = |i: u64, o: u64| {
            let shortcut = if i != o { mul(i, o)?.checked_add(o) } else { Some(0) };
            sum(&[norm(i), conv3(i, o), norm(o), conv3(o, o), shortcut])
        };
        let attention = |c: u64| sum(&[norm(c), mul(c, c)?.checked_add(c)?.checked_mul(4)]);
        let stack = |i: u64, o: u64, n: u64, attn: bool, resample: bool| {
            let attentions = if attn { attention(o)?.checked_mul(n) } else { Some(0) };
            let resampler = if resample { conv3(o, o) } else { Some(0) };
            sum(&[resnet(i, o), resnet(o, o)?.checked_mul(n.checked_sub(1)?), attentions, resampler])
        };
        let mid = |c: u64| {
            let attn = if self.mid_block_add_attention { attention(c) } else { Some(0) };
            sum(&[resnet(c, c)?.checked_mul(2), attn])
        };
        let levels = channels.len();
        let mut total = sum(&[conv3(in_ch, first), mid(last), norm(last), conv3(last, latent)])?;
        for (i, block) in down.iter().enumerate() {
            let block =
                stack(channels[i.saturating_sub(1)], channels[i], layers, block.has_attention(), i + 1 != levels);
            total = total.checked_add(block?)?;
        }
        let reversed: Vec<u64> = channels.iter().rev().copied().collect();
        total = sum(&[Some(total), conv3(latent, last), mid(last), norm(first), conv3(first, out_ch)])?;
        for (i, block) in up.iter().enumerate() {
            let block = stack(
                reversed[i.saturating_sub(1)],
                reversed[i],
                layers.checked_add(1)?,
                block.has_attention(),
                i + 1 != levels,
            );
            total = total.checked_add(block?)?;
        }
        // quant_conv and post_quant_conv (1×1 with bias) and the codebook.
        sum(&[
            Some(total),
            mul(latent, embed)?.checked_add(embed),
            mul(embed, latent)?.checked_add(latent),
            mul(codes, embed),
        ])
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::module::Module;

    use crate::config::VQModelConfig;

    #[test]
    fn the_count_is_the_built_models_parameter_count() {
        let tiny = VQModelConfig {
            down_block_types: vec!["DownEncoderBlock2D".into(), "AttnDownEncoderBlock2D".into()],
            up_block_types: vec!["AttnUpDecoderBlock2D".into(), "UpDecoderBlock2D".into()],
            block_out_channels: vec![20, 28],
            layers_per_block: 2,
            latent_channels: 12,
            num_vq_embeddings: 31,
            norm_num_groups: 4,
            vq_embed_dim: Some(7),
            sample_size: 16,
            ..VQModelConfig::default()
        };
        // The fixture's VQ-VAE (fixtures/README.md): 207,235 parameters.
        assert_eq!(tiny.num_parameters(), Some(207_235));
        let three_levels = VQModelConfig {
            down_block_types: vec!["AttnDownEncoderBlock2D".into(); 3],
            up_block_types: vec!["UpDecoderBlock2D".into(); 3],
            block_out_channels: vec![8, 8, 12],
            layers_per_block: 1,
            vq_embed_dim: None,
            mid_block_add_attention: false,
            ..tiny.clone()
        };
        for config in [tiny, three_levels] {
            let model = config.init::<NdArray>(&Default::default()).unwrap();
            assert_eq!(config.num_parameters(), Some(model.num_params() as u64), "{config:?}");
        }
    }
}
