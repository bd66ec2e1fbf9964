//! `CLIPTextConfig` parsing (transformers 4 and 5 files), defaults, presets and validation.

use clip_text::{CLIPTextConfig, ConfigError, HiddenAct};

use crate::common::fixture;

fn tiny() -> CLIPTextConfig {
    CLIPTextConfig {
        vocab_size: 49408,
        hidden_size: 16,
        intermediate_size: 37,
        num_hidden_layers: 3,
        num_attention_heads: 4,
        max_position_embeddings: 77,
        hidden_act: HiddenAct::QuickGelu,
        layer_norm_eps: 1e-5,
        eos_token_id: 2,
    }
}

#[test]
fn transformers_4_and_5_files_parse_alike() {
    let hub = CLIPTextConfig::from_file(&fixture("tiny/hub/text_encoder/config.json")).unwrap();
    let raw = CLIPTextConfig::from_file(&fixture("tiny/raw/text_encoder/config.json")).unwrap();
    assert_eq!(hub, tiny());
    assert_eq!(raw, tiny());
    assert_eq!(hub.head_dim(), 4);
}

#[test]
fn absent_fields_take_transformers_defaults() {
    let config = CLIPTextConfig::from_json("{}").unwrap();
    assert_eq!(config, CLIPTextConfig::vit_b_32());
    assert_eq!(config, CLIPTextConfig::default());
    let partial = CLIPTextConfig::from_json(
        r#"{"hidden_size": 768, "num_attention_heads": 12,
        "intermediate_size": 3072, "unknown_field": [1, 2], "dtype": "float16"}"#,
    )
    .unwrap();
    assert_eq!(partial, CLIPTextConfig::vit_l_14());
}

#[test]
fn presets() {
    let b32 = CLIPTextConfig::vit_b_32();
    assert_eq!((b32.vocab_size, b32.hidden_size, b32.intermediate_size, b32.num_hidden_layers), (49408, 512, 2048, 12));
    assert_eq!((b32.num_attention_heads, b32.head_dim(), b32.eos_token_id), (8, 64, 49407));
    let l14 = CLIPTextConfig::vit_l_14();
    assert_eq!((l14.hidden_size, l14.intermediate_size, l14.num_attention_heads), (768, 3072, 12));
    assert_eq!((l14.num_hidden_layers, l14.max_position_embeddings), (12, 77));
    b32.validate().unwrap();
    l14.validate().unwrap();
}

#[test]
fn activations_and_eos_lists() {
    for (name, act) in HiddenAct::NAMES.iter().zip([
        HiddenAct::QuickGelu,
        HiddenAct::Gelu,
        HiddenAct::GeluNew,
        HiddenAct::GeluPytorchTanh,
    ]) {
        let config = CLIPTextConfig::from_json(&format!(r#"{{"hidden_act": "{name}"}}"#)).unwrap();
        assert_eq!(config.hidden_act, act);
        assert_eq!(act.to_string(), *name);
    }
    let config = CLIPTextConfig::from_json(r#"{"eos_token_id": [49407]}"#).unwrap();
    assert_eq!(config.eos_token_id, 49407);
    let error = CLIPTextConfig::from_json(r#"{"eos_token_id": [1, 2]}"#).unwrap_err();
    assert!(error.to_string().contains("eos_token_id"), "{error}");
    let error = CLIPTextConfig::from_json(r#"{"hidden_act": "swish"}"#).unwrap_err();
    assert!(error.to_string().contains("hidden_act") && error.to_string().contains("swish"), "{error}");
    assert!(matches!(
        HiddenAct::try_from("swish".to_string()),
        Err(ConfigError::UnsupportedActivation { name }) if name == "swish"
    ));
}

#[test]
fn validation_names_the_field() {
    let error = CLIPTextConfig::from_json(r#"{"hidden_size": 100, "num_attention_heads": 8}"#).unwrap_err();
    assert!(matches!(error, ConfigError::HeadsDoNotDivideHidden { hidden_size: 100, num_attention_heads: 8 }));
    let error = CLIPTextConfig::from_json(r#"{"num_hidden_layers": 0}"#).unwrap_err();
    assert!(matches!(error, ConfigError::Zero { field: "num_hidden_layers" }), "{error}");
    let error = CLIPTextConfig::from_json(r#"{"layer_norm_eps": -1.0}"#).unwrap_err();
    assert!(matches!(error, ConfigError::Invalid { field: "layer_norm_eps", .. }), "{error}");
    let error = CLIPTextConfig::from_json(r#"{"hidden_size": "big"}"#).unwrap_err();
    assert!(matches!(error, ConfigError::Json(_)), "{error}");
}

#[test]
fn an_invalid_config_file_is_named_in_its_error() {
    let path = std::env::temp_dir().join(format!("clip-text-invalid-config-{}.json", std::process::id()));
    std::fs::write(&path, r#"{"hidden_size": "big"}"#).expect("write the config");
    let error = CLIPTextConfig::from_file(&path).unwrap_err();
    std::fs::remove_file(&path).ok();
    assert!(error.to_string().starts_with(&format!("{}: ", path.display())), "{error}");
    match error {
        ConfigError::InFile { path: named, source } => {
            assert_eq!(named, path);
            assert!(matches!(*source, ConfigError::Json(_)), "{source}");
        }
        other => panic!("expected InFile, got {other:?}"),
    }
}
