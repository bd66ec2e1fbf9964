//! The one place where checkpoint keys meet module paths.
//!
//! Checkpoint keys are identical in every on-disk layout of the VQ-Diffusion transformer (the
//! Hub's November 2022 conversion and diffusers 0.42.1 `save_pretrained`, `.safetensors` or
//! `.bin`). Module fields carry diffusers' names, so most keys map to themselves:
//!
//! | checkpoint key | module path |
//! |---|---|
//! | `latent_image_embedding.{emb,height_emb,width_emb}.weight` | same |
//! | `transformer_blocks.{i}.norm{1,2}.emb.weight` | same |
//! | `transformer_blocks.{i}.norm{1,2}.linear.{weight,bias}` | same (Linear: `[out, in]` transposed) |
//! | `transformer_blocks.{i}.attn{1,2}.{to_q,to_k,to_v}.{weight,bias}` | same |
//! | `transformer_blocks.{i}.attn{1,2}.to_out.0.{weight,bias}` | `….to_out.{weight,bias}` (list index; `to_out.1` is a Dropout) |
//! | `transformer_blocks.{i}.norm3.{weight,bias}` | `….norm3.{gamma,beta}` (LayerNorm renaming) |
//! | `transformer_blocks.{i}.ff.net.0.proj.{weight,bias}` | `….ff.proj_in.{weight,bias}` (`net.0` is the activation module owning the projection) |
//! | `transformer_blocks.{i}.ff.net.2.{weight,bias}` | `….ff.proj_out.{weight,bias}` (`net.1` is a Dropout) |
//! | `norm_out.{weight,bias}` | `norm_out.{gamma,beta}` |
//! | `out.{weight,bias}` | same |
//!
//! The Linear transposition and the LayerNorm `weight`/`bias` → `gamma`/`beta` renaming are
//! done by `vq_weights::load_module`; only the renames below are this crate's.

use vq_weights::KeyMap;

/// Regex rules mapping checkpoint keys to module paths (see the module docs).
pub(crate) fn key_map() -> KeyMap {
    KeyMap::new(&[
        // attn{1,2}.to_out.0.* -> Attention::to_out
        (r"\.to_out\.0\.", ".to_out."),
        // ff.net.0.proj.* -> FeedForward::proj_in
        (r"\.ff\.net\.0\.proj\.", ".ff.proj_in."),
        // ff.net.2.* -> FeedForward::proj_out
        (r"\.ff\.net\.2\.", ".ff.proj_out."),
    ])
}
