//! Checkpoint keys → module paths: the one table of the crate.
//!
//! Module fields carry diffusers' names (`encoder.down_blocks.0.resnets.1.conv1`,
//! `decoder.mid_block.attentions.0.to_q`, `quantize.embedding`, …), so most keys load as they
//! are. The rules below cover the rest, for both on-disk layouts
//! (`docs/reference.md`, "Checkpoint keys and layouts"):
//!
//! | checkpoint key | module path | why |
//! |---|---|---|
//! | `…attentions.N.query.*` | `…attentions.N.to_q.*` | legacy attention names of the Hub files (what diffusers' `_fix_state_dict_keys_on_load` renames) |
//! | `…attentions.N.key.*` | `…attentions.N.to_k.*` | 〃 |
//! | `…attentions.N.value.*` | `…attentions.N.to_v.*` | 〃 |
//! | `…attentions.N.proj_attn.*` | `…attentions.N.to_out.*` | 〃 |
//! | `…to_out.0.*` | `…to_out.*` | diffusers' `ModuleList([Linear, Dropout])`; one `Linear` here |
//! | `…downsamplers.0.conv.*` | `…downsampler.conv.*` | a one-element `ModuleList`; an `Option` here |
//! | `…upsamplers.0.conv.*` | `…upsampler.conv.*` | 〃 |
//!
//! Applied in order, after which GroupNorm `weight`/`bias` become `gamma`/`beta` and Linear
//! weights are transposed by [`vq_weights::load_module`]. The attention weights are 2-D Linear
//! weights in both namings (plain renames, no reshape).

use vq_weights::KeyMap;

/// The key map of VQModel checkpoints (both attention namings).
pub fn key_map() -> KeyMap {
    KeyMap::new(&[
        (r"(attentions\.\d+)\.query\.", "${1}.to_q."),
        (r"(attentions\.\d+)\.key\.", "${1}.to_k."),
        (r"(attentions\.\d+)\.value\.", "${1}.to_v."),
        (r"(attentions\.\d+)\.proj_attn\.", "${1}.to_out."),
        (r"\.to_out\.0\.", ".to_out."),
        (r"\.downsamplers\.0\.", ".downsampler."),
        (r"\.upsamplers\.0\.", ".upsampler."),
    ])
}
