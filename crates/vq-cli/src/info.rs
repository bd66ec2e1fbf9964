//! `vq-diffusion info`: what a model is — its sizes, vocabulary, sampling defaults and where it
//! is loaded from — read from its configs, without loading weights.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use vq_pipeline::hub::resolve_pipeline_dir;
use vq_pipeline::{LoadOptions, ModelDescription, SAMPLING_DEFAULTS_FILE, VOCABULARY_FILE};

use crate::error::CliError;
use crate::model::{choose_from_env, ModelChoice, Origin, EMBEDDED_NAME};

/// The most words `info` lists; a larger vocabulary is counted.
pub const MAX_LISTED_WORDS: usize = 200;

/// The long help of `vq-diffusion info` (on its subcommand, where clap reads it).
pub const LONG_ABOUT: &str = "Describe a model: where it is loaded from (the model built into this binary, a folder, \
    or a Hugging Face repository through the shared HF cache), its sizes (image and latent grid, codebook, \
    transformer, text encoder), the sampling settings `generate` uses for it by default, and the words it learned \
    where the model lists them (vocabulary.json) and they are few. Reads the configs only, no weights. Printed to \
    stdout, one `name: value` line each.";

/// `vq-diffusion info`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  vq-diffusion info\n  vq-diffusion info --model microsoft/vq-diffusion-ithq")]
pub struct InfoArgs {
    /// Pipeline folder, or Hugging Face repository id. Default: $VQ_DIFFUSION_MODEL, else the
    /// shapes model built into this binary.
    #[arg(long, value_name = "DIR|REPO_ID")]
    pub model: Option<String>,
}

/// Prints the description of the chosen model.
pub fn run(args: &InfoArgs) -> Result<(), CliError> {
    let choice = choose_from_env(args.model.as_deref())?;
    let dir = resolve_pipeline_dir(&choice.model, None, &LoadOptions::default().hub)
        .map_err(vq_pipeline::PipelineError::from)?;
    let description = ModelDescription::from_dir(&dir)?;
    // A closed stdout is not worth an error.
    let _ = std::io::stdout().write_all(describe(&choice, &description).as_bytes());
    Ok(())
}

/// The `name: value` lines of `info`.
pub fn describe(choice: &ModelChoice, model: &ModelDescription) -> String {
    let named_by = match choice.origin {
        Origin::Flag => " (--model)",
        Origin::Environment => " ($VQ_DIFFUSION_MODEL)",
        Origin::Embedded => "",
    };
    let source = match choice.origin {
        Origin::Embedded => format!("{EMBEDDED_NAME}, built into this binary"),
        _ if Path::new(&choice.model).is_dir() => format!("folder {}{named_by}", choice.model),
        _ => format!("Hugging Face repository {}{named_by}", choice.model),
    };
    let (t, text, vq) = (&model.configs.transformer, &model.configs.text_encoder, &model.configs.vqvae);
    let (side, levels) = (t.sample_size, vq.block_out_channels.len());
    let pixels = side << levels.saturating_sub(1);
    let steps = model.default_steps();
    let recommended = &model.sampling_defaults;
    let from_file = |value: Option<f32>, diffusers: f32| match value {
        Some(value) => format!("{value} ({SAMPLING_DEFAULTS_FILE})"),
        None => format!("{diffusers} (diffusers')"),
    };
    let steps_source = match steps < 100 {
        true => "the model's num_train_timesteps",
        false => "diffusers'",
    };
    let mut out = String::new();
    let mut line = |name: &str, value: String| {
        let _ = writeln!(out, "{name}: {value}");
    };
    line("model", source);
    line("folder", model.dir.display().to_string());
    line("image", format!("{pixels} × {pixels} pixels"));
    line("latent grid", format!("{side} × {side} tokens"));
    line("codebook", format!("{} codes (+ the mask class)", vq.num_vq_embeddings));
    line(
        "transformer",
        format!(
            "{} layers, width {} ({} heads × {}), {} diffusion steps",
            t.num_layers,
            t.inner_dim(),
            t.num_attention_heads,
            t.attention_head_dim,
            model.scheduler_config.num_train_timesteps
        ),
    );
    line(
        "text encoder",
        format!("{} layers, width {}, {} token ids", text.num_hidden_layers, text.hidden_size, text.vocab_size),
    );
    line("text length", format!("{} tokens", model.text_length));
    line(
        "sampling defaults",
        format!(
            "{steps} steps ({steps_source}), guidance scale {}, truncation rate {}",
            from_file(recommended.guidance_scale, 5.0),
            from_file(recommended.truncation_rate, 1.0)
        ),
    );
    line(
        "vocabulary",
        match &model.vocabulary {
            Some(v) if v.words.len() <= MAX_LISTED_WORDS => {
                let words: Vec<&str> = v.words.iter().map(String::as_str).collect();
                format!("{} words: {}", words.len(), words.join(" "))
            }
            Some(v) => format!("{} words ({VOCABULARY_FILE})", v.words.len()),
            None => format!("not listed (no {VOCABULARY_FILE}: prompt words are not checked)"),
        },
    );
    out
}
