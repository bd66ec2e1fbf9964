//! The one place that maps checkpoint keys to this crate's module paths.
//!
//! Module paths equal transformers' `CLIPTextModel` state-dict keys without the `text_model.`
//! prefix (field names were chosen to match), so the map only has to:
//!
//! | checkpoint key | module path | why |
//! |---|---|---|
//! | `text_model.<rest>` | `<rest>` | hub / transformers-4 files prefix every key; transformers-5 `save_pretrained` does not |
//! | `[text_model.]embeddings.position_ids` | — (ignored) | int64 buffer `[1, max_position_embeddings]` = `0..L`, not a parameter |
//!
//! Handled by `vq-weights` (burn-store's PyTorch adapter), not here: Linear `weight` `[out, in]`
//! → burn `[in, out]`; LayerNorm `weight`/`bias` → `gamma`/`beta`; f16 → the model's float type.
//!
//! Full list (per layer `i`): `embeddings.token_embedding.weight`,
//! `embeddings.position_embedding.weight`,
//! `encoder.layers.{i}.self_attn.{q_proj,k_proj,v_proj,out_proj}.{weight,bias}`,
//! `encoder.layers.{i}.{layer_norm1,layer_norm2}.{weight,bias}`,
//! `encoder.layers.{i}.mlp.{fc1,fc2}.{weight,bias}`, `final_layer_norm.{weight,bias}`.

use vq_weights::KeyMap;

/// Key map for [`vq_weights::load_module`]: accepts keys with and without `text_model.` and
/// drops the `position_ids` buffer.
pub fn key_map() -> KeyMap {
    KeyMap::new(&[(r"^text_model\.", "")]).ignore(&[r"(^|\.)embeddings\.position_ids$"])
}
