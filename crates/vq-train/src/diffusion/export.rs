//! Writing the trained model as a diffusers pipeline folder in the hub's layout (what
//! `microsoft/vq-diffusion-ithq` has), loadable by `VQDiffusionPipeline::from_dir` and by
//! diffusers' `VQDiffusionPipeline.from_pretrained`.

use std::path::Path;
use vq_kernels::KernelBackend;

use serde_json::json;
use vq_model::{VQModel, VQModelConfig};
use vq_pipeline::Vocabulary;
use vq_scheduler::VQDiffusionSchedulerConfig;

use super::model::{TextToTokens, TextToTokensConfig};
use crate::text::caption_words;
use crate::train::export::{
    create_dir, pytorch_tensors, write_json, write_safetensors, StoreDtype, TRANSFORMER_RENAMES,
};
use crate::vqvae::write_vqvae_dir;
use crate::TrainError;

/// diffusers version written into the configs (the one this workspace mirrors).
const DIFFUSERS_VERSION: &str = "0.42.1";

/// Writes `out_dir/{model_index.json, vocabulary.json, vqvae, transformer, text_encoder,
/// tokenizer, scheduler, learned_classifier_free_sampling_embeddings}` with weights in `dtype`.
/// The VQ-VAE is read from `vqvae_dir` (stage 1's output) and the tokenizer files copied from
/// `tokenizer_dir`; `vocabulary.json` lists the caption words, so that the command line names a
/// prompt's other words as never learned.
pub fn write_pipeline<B: KernelBackend>(
    model: &TextToTokens<B>,
    config: &TextToTokensConfig,
    vqvae_dir: &Path,
    tokenizer_dir: &Path,
    scheduler: &VQDiffusionSchedulerConfig,
    out_dir: &Path,
    dtype: StoreDtype,
) -> Result<(), TrainError> {
    create_dir(out_dir)?;
    let device = model.null_embedding.val().device();
    let model_index = json!({
        "_class_name": "VQDiffusionPipeline",
        "_diffusers_version": DIFFUSERS_VERSION,
        "learned_classifier_free_sampling_embeddings": ["vq_diffusion", "LearnedClassifierFreeSamplingEmbeddings"],
        "scheduler": ["diffusers", "VQDiffusionScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "transformer": ["diffusers", "Transformer2DModel"],
        "vqvae": ["diffusers", "VQModel"],
    });
    write_json(&out_dir.join("model_index.json"), &model_index)?;
    Vocabulary::new(caption_words()).write(out_dir).map_err(|e| TrainError::model("vocabulary", e))?;

    // vqvae/
    let vq_config =
        VQModelConfig::from_file(&vqvae_dir.join("config.json")).map_err(|e| TrainError::model("VQ-VAE config", e))?;
    let vqvae = VQModel::<B>::from_pretrained(vqvae_dir, None, &device)
        .map_err(|e| TrainError::model("loading the VQ-VAE", e))?;
    write_vqvae_dir(&vqvae, &vq_config, &out_dir.join("vqvae"), dtype)?;

    // transformer/
    let transformer_dir = out_dir.join("transformer");
    create_dir(&transformer_dir)?;
    let t = config.transformer();
    write_json(
        &transformer_dir.join("config.json"),
        &json!({
            "_class_name": "Transformer2DModel",
            "_diffusers_version": DIFFUSERS_VERSION,
            "activation_fn": "geglu-approximate",
            "attention_bias": t.attention_bias,
            "attention_head_dim": t.attention_head_dim,
            "cross_attention_dim": t.cross_attention_dim,
            "dropout": 0.0,
            "in_channels": null,
            "norm_type": "ada_norm",
            "num_attention_heads": t.num_attention_heads,
            "num_embeds_ada_norm": t.num_embeds_ada_norm,
            "num_layers": t.num_layers,
            "num_vector_embeds": t.num_vector_embeds,
            "sample_size": t.sample_size,
        }),
    )?;
    let tensors = pytorch_tensors(&model.transformer, "", TRANSFORMER_RENAMES)?;
    write_safetensors(&transformer_dir.join("diffusion_pytorch_model.safetensors"), &tensors, dtype)?;

    // text_encoder/
    let text_dir = out_dir.join("text_encoder");
    create_dir(&text_dir)?;
    let c = config.text_encoder();
    write_json(
        &text_dir.join("config.json"),
        &json!({
            "architectures": ["CLIPTextModel"],
            "attention_dropout": 0.0,
            "bos_token_id": config.vocab_size - 2,
            "dropout": 0.0,
            "eos_token_id": c.eos_token_id,
            "hidden_act": "quick_gelu",
            "hidden_size": c.hidden_size,
            "initializer_factor": 1.0,
            "initializer_range": 0.02,
            "intermediate_size": c.intermediate_size,
            "layer_norm_eps": c.layer_norm_eps,
            "max_position_embeddings": c.max_position_embeddings,
            "model_type": "clip_text_model",
            "num_attention_heads": c.num_attention_heads,
            "num_hidden_layers": c.num_hidden_layers,
            "pad_token_id": 0,
            "projection_dim": c.hidden_size,
            "torch_dtype": "float32",
            "vocab_size": c.vocab_size,
        }),
    )?;
    let tensors = pytorch_tensors(&model.text_encoder, "text_model.", &[])?;
    write_safetensors(&text_dir.join("model.safetensors"), &tensors, dtype)?;

    // tokenizer/
    let tokenizer_out = out_dir.join("tokenizer");
    create_dir(&tokenizer_out)?;
    for name in ["vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"] {
        std::fs::copy(tokenizer_dir.join(name), tokenizer_out.join(name))
            .map_err(|e| TrainError::io(&tokenizer_dir.join(name), e))?;
    }

    // scheduler/
    let scheduler_dir = out_dir.join("scheduler");
    create_dir(&scheduler_dir)?;
    write_json(
        &scheduler_dir.join("scheduler_config.json"),
        &json!({
            "_class_name": "VQDiffusionScheduler",
            "_diffusers_version": DIFFUSERS_VERSION,
            "alpha_cum_end": scheduler.alpha_cum_end,
            "alpha_cum_start": scheduler.alpha_cum_start,
            "gamma_cum_end": scheduler.gamma_cum_end,
            "gamma_cum_start": scheduler.gamma_cum_start,
            "num_train_timesteps": scheduler.num_train_timesteps,
            "num_vec_classes": scheduler.num_vec_classes,
        }),
    )?;

    // learned_classifier_free_sampling_embeddings/
    let cf_dir = out_dir.join("learned_classifier_free_sampling_embeddings");
    create_dir(&cf_dir)?;
    write_json(
        &cf_dir.join("config.json"),
        &json!({
            "_class_name": "LearnedClassifierFreeSamplingEmbeddings",
            "_diffusers_version": DIFFUSERS_VERSION,
            "hidden_size": config.text_width,
            "learnable": true,
            "length": config.text_length,
        }),
    )?;
    let null = model.null_embedding.val();
    let shape = null.dims().to_vec();
    let values = null
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| TrainError::model("null embedding", format!("{e:?}")))?;
    write_safetensors(
        &cf_dir.join("diffusion_pytorch_model.safetensors"),
        &[("embeddings".into(), shape, values)],
        dtype,
    )
}
