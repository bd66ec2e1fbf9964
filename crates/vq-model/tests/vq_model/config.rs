//! `vqvae/config.json` parsing: diffusers' defaults, ignored fields, typed errors.

use vq_model::{Activation, ConfigError, DownBlockType, UpBlockType, VQModelConfig, ITHQ_CONFIG_JSON};

use crate::common::{vqvae_dir, B};

/// The tiny fixture's config with one field replaced.
fn tiny_with(field: &str, value: serde_json::Value) -> String {
    let json = std::fs::read_to_string(vqvae_dir("raw").join("config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&json).unwrap();
    config[field] = value;
    config.to_string()
}

fn error_of(json: &str) -> ConfigError {
    VQModelConfig::from_json(json).expect_err("config should be rejected")
}

#[test]
fn ithq_config_gets_diffusers_defaults() {
    let config = VQModelConfig::from_json(ITHQ_CONFIG_JSON).unwrap();
    assert_eq!(config.block_out_channels, [64, 128, 256, 512]);
    assert_eq!(config.embed_dim(), 128);
    assert_eq!(config.num_vq_embeddings, 4096);
    // Absent from the Hub file: diffusers' defaults.
    assert_eq!(config.norm_type, "group");
    assert!(config.mid_block_add_attention);
    assert!(!config.lookup_from_codebook);
    assert!(!config.force_upcast);
    assert_eq!(config.scaling_factor, 0.18215);
    assert_eq!(config.activation().unwrap(), Activation::Silu);
    assert_eq!(
        config.down_blocks().unwrap(),
        [
            DownBlockType::DownEncoderBlock2D,
            DownBlockType::DownEncoderBlock2D,
            DownBlockType::DownEncoderBlock2D,
            DownBlockType::AttnDownEncoderBlock2D
        ]
    );
    assert_eq!(config.up_blocks().unwrap()[0], UpBlockType::AttnUpDecoderBlock2D);
}

#[test]
fn hub_and_raw_configs_describe_the_same_model() {
    let hub = VQModelConfig::from_file(&vqvae_dir("hub").join("config.json")).unwrap();
    let raw = VQModelConfig::from_file(&vqvae_dir("raw").join("config.json")).unwrap();
    assert_eq!(hub, raw);
    assert_eq!(hub.embed_dim(), 7);
    assert_eq!(hub.latent_channels, 12);
}

#[test]
fn empty_config_is_diffusers_default_model() {
    let config = VQModelConfig::from_json("{}").unwrap();
    assert_eq!(config, VQModelConfig::default());
    assert_eq!(config.block_out_channels, [64]);
    assert_eq!(config.layers_per_block, 1);
    assert_eq!(config.embed_dim(), 3);
    assert_eq!(config.num_vq_embeddings, 256);
}

#[test]
fn unet_res_prefix_and_activation_case_are_accepted_like_diffusers() {
    let json =
        tiny_with("down_block_types", serde_json::json!(["UNetResDownEncoderBlock2D", "AttnDownEncoderBlock2D"]));
    let config = VQModelConfig::from_json(&json).unwrap();
    assert_eq!(config.down_blocks().unwrap()[0], DownBlockType::DownEncoderBlock2D);
    let config = VQModelConfig::from_json(&tiny_with("act_fn", "Swish".into())).unwrap();
    assert_eq!(config.activation().unwrap(), Activation::Silu);
    let config = VQModelConfig::from_json(&tiny_with("act_fn", "gelu".into())).unwrap();
    assert_eq!(config.activation().unwrap(), Activation::Gelu);
}

#[test]
fn unknown_block_type_names_field_index_and_value() {
    let json = tiny_with("up_block_types", serde_json::json!(["AttnUpDecoderBlock2D", "UpBlock2D"]));
    match error_of(&json) {
        ConfigError::BlockType { field, index, value, .. } => {
            assert_eq!((field, index, value.as_str()), ("up_block_types", 1, "UpBlock2D"));
        }
        other => panic!("unexpected error {other:?}"),
    }
    let json = tiny_with("down_block_types", serde_json::json!(["CrossAttnDownBlock2D", "DownEncoderBlock2D"]));
    let message = error_of(&json).to_string();
    assert!(message.contains("down_block_types[0]") && message.contains("CrossAttnDownBlock2D"), "{message}");
}

#[test]
fn spatial_norm_is_unsupported_and_other_norms_invalid() {
    assert!(matches!(error_of(&tiny_with("norm_type", "spatial".into())), ConfigError::SpatialNorm));
    match error_of(&tiny_with("norm_type", "layer".into())) {
        ConfigError::InvalidValue { field, value, .. } => {
            assert_eq!((field, value.as_str()), ("norm_type", "\"layer\""))
        }
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn unknown_activation_is_named() {
    match error_of(&tiny_with("act_fn", "tanh".into())) {
        ConfigError::Activation { value } => assert_eq!(value, "tanh"),
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn inconsistent_sizes_are_rejected_with_field_and_value() {
    // 30 channels cannot be split into 4 groups.
    let message = error_of(&tiny_with("block_out_channels", serde_json::json!([20, 30]))).to_string();
    assert!(
        message.contains("block_out_channels") && message.contains("[20,30]") && message.contains("30 is not"),
        "{message}"
    );
    // One block type per level.
    let error = error_of(&tiny_with("down_block_types", serde_json::json!(["DownEncoderBlock2D"])));
    assert!(matches!(error, ConfigError::InvalidValue { field: "down_block_types", .. }), "{error:?}");
    let error = error_of(&tiny_with("layers_per_block", 0.into()));
    assert!(matches!(error, ConfigError::InvalidValue { field: "layers_per_block", .. }), "{error:?}");
    let error = error_of(&tiny_with("vq_embed_dim", 0.into()));
    assert!(matches!(error, ConfigError::InvalidValue { field: "vq_embed_dim", .. }), "{error:?}");
}

#[test]
fn wrong_json_types_and_unreadable_files_are_errors() {
    assert!(matches!(error_of(&tiny_with("layers_per_block", "two".into())), ConfigError::Json(_)));
    assert!(matches!(error_of(r#"{"in_channels": "#), ConfigError::Json(_)));
    let missing = VQModelConfig::from_file(&vqvae_dir("hub").join("no-such-config.json"));
    assert!(matches!(missing, Err(ConfigError::Io { .. })));
}

#[test]
fn null_vq_embed_dim_means_latent_channels() {
    let config = VQModelConfig::from_json(&tiny_with("vq_embed_dim", serde_json::Value::Null)).unwrap();
    assert_eq!(config.embed_dim(), 12);
    let model = config.init::<B>(&Default::default()).unwrap();
    assert_eq!(model.quantize.embed_dim(), 12);
    assert_eq!(model.quant_conv.weight.dims(), [12, 12, 1, 1]);
}

#[test]
fn init_builds_the_configured_structure() {
    let json = tiny_with("mid_block_add_attention", false.into());
    let model = VQModelConfig::from_json(&json).unwrap().init::<B>(&Default::default()).unwrap();
    assert!(model.encoder.mid_block.attentions.is_empty());
    assert!(model.decoder.mid_block.attentions.is_empty());
    // Encoder: 2 resnets per block, downsampling except in the last; the last has attention.
    let down = &model.encoder.down_blocks;
    assert_eq!((down[0].resnets.len(), down[0].attentions.len()), (2, 0));
    assert_eq!((down[1].resnets.len(), down[1].attentions.len()), (2, 2));
    assert!(down[0].downsampler.is_some() && down[1].downsampler.is_none());
    // Decoder: layers_per_block + 1 resnets, channels walked backwards, first block attends.
    let up = &model.decoder.up_blocks;
    assert_eq!((up[0].resnets.len(), up[0].attentions.len()), (3, 3));
    assert_eq!(up[1].resnets[0].conv1.weight.dims(), [20, 28, 3, 3]);
    assert!(up[1].resnets[0].conv_shortcut.is_some() && up[1].resnets[1].conv_shortcut.is_none());
    assert!(up[0].upsampler.is_some() && up[1].upsampler.is_none());
    assert_eq!(model.decoder.conv_norm_out.epsilon, 1e-6);
    assert_eq!(model.encoder.down_blocks[0].resnets[0].norm1.epsilon, 1e-6);
}

#[test]
fn an_invalid_config_file_is_named_in_its_error() {
    let path = std::env::temp_dir().join(format!("vq-model-invalid-config-{}.json", std::process::id()));
    std::fs::write(&path, r#"{"layers_per_block": 0}"#).expect("write the config");
    let error = VQModelConfig::from_file(&path).unwrap_err();
    std::fs::remove_file(&path).ok();
    assert!(error.to_string().starts_with(&format!("{}: ", path.display())), "{error}");
    match error {
        ConfigError::InFile { path: named, source } => {
            assert_eq!(named, path);
            assert!(matches!(*source, ConfigError::InvalidValue { field: "layers_per_block", .. }), "{source}");
        }
        other => panic!("expected InFile, got {other:?}"),
    }
}
