//! Parsing of diffusers' `transformer/config.json`: defaults, the norm-type upgrade rule,
//! and typed rejection of the paths this crate does not implement.

use transformer2d::{ConfigError, FeedForwardActivation, Transformer2DConfig};

use crate::common::tiny_transformer;

fn parse(json: &str) -> Result<Transformer2DConfig, ConfigError> {
    Transformer2DConfig::from_json(json)
}

/// The hub file has no `norm_type`; `num_embeds_ada_norm` upgrades the default to ada_norm.
#[test]
fn hub_config_without_norm_type_parses() {
    let json = std::fs::read_to_string(tiny_transformer("hub").join("config.json")).unwrap();
    assert!(!json.contains("norm_type"), "the hub-like fixture config must lack norm_type");
    let config = parse(&json).unwrap();
    assert_eq!(config.num_vector_embeds, 32);
    assert_eq!(config.sample_size, 8);
    assert_eq!(config.num_embeds_ada_norm, 100);
    assert_eq!(config.cross_attention_dim, 16);
    assert_eq!(config.num_attention_heads, 3);
    assert_eq!(config.attention_head_dim, 8);
    assert_eq!(config.num_layers, 2);
    assert!(config.attention_bias);
    assert_eq!(config.activation_fn, FeedForwardActivation::GegluApproximate);
    assert_eq!(config.dropout, 0.0);
    assert_eq!(config.norm_eps, 1e-5);
    assert_eq!((config.inner_dim(), config.num_classes(), config.num_latent_pixels()), (24, 31, 64));
}

/// `save_pretrained` writes every field, with `norm_type: "layer_norm"` (also upgraded).
#[test]
fn raw_config_with_layer_norm_type_parses_to_the_same_model() {
    let path = tiny_transformer("raw").join("config.json");
    let raw = Transformer2DConfig::from_file(&path).unwrap();
    assert!(std::fs::read_to_string(&path).unwrap().contains(r#""norm_type": "layer_norm""#));
    let hub = Transformer2DConfig::from_file(&tiny_transformer("hub").join("config.json")).unwrap();
    assert_eq!(raw.to_string(), hub.to_string());
}

#[test]
fn explicit_ada_norm_parses() {
    let config = parse(
        r#"{"num_vector_embeds": 5, "sample_size": 2, "num_embeds_ada_norm": 3,
        "cross_attention_dim": 4, "norm_type": "ada_norm"}"#,
    )
    .unwrap();
    assert_eq!(config.num_embeds_ada_norm, 3);
}

/// The ITHQ config of the Hub and diffusers' defaults for
/// the fields it leaves out; unknown fields are ignored.
#[test]
fn ithq_config_and_defaults() {
    let ithq = parse(
        r#"{"_class_name": "Transformer2DModel", "_diffusers_version": "0.8.0.dev0",
        "activation_fn": "geglu-approximate", "attention_bias": true, "attention_head_dim": 88,
        "cross_attention_dim": 512, "dropout": 0.0, "in_channels": null, "norm_num_groups": 32,
        "num_attention_heads": 16, "num_embeds_ada_norm": 100, "num_layers": 36,
        "num_vector_embeds": 4097, "sample_size": 32, "some_future_field": [1, 2]}"#,
    )
    .unwrap();
    assert_eq!((ithq.inner_dim(), ithq.num_classes(), ithq.num_latent_pixels()), (1408, 4096, 1024));
    assert_eq!(ithq.num_layers, 36);

    let minimal =
        parse(r#"{"num_vector_embeds": 5, "sample_size": 2, "num_embeds_ada_norm": 3, "cross_attention_dim": 4}"#)
            .unwrap();
    assert_eq!((minimal.num_attention_heads, minimal.attention_head_dim, minimal.num_layers), (16, 88, 1));
    assert_eq!(minimal.activation_fn, FeedForwardActivation::Geglu);
    assert!(!minimal.attention_bias);
    assert_eq!((minimal.dropout, minimal.norm_eps), (0.0, 1e-5));
}

#[test]
fn every_activation_name_parses() {
    let names = [
        ("gelu", FeedForwardActivation::Gelu),
        ("gelu-approximate", FeedForwardActivation::GeluApproximate),
        ("geglu", FeedForwardActivation::Geglu),
        ("geglu-approximate", FeedForwardActivation::GegluApproximate),
        ("swiglu", FeedForwardActivation::Swiglu),
        ("linear-silu", FeedForwardActivation::LinearSilu),
    ];
    for (name, expected) in names {
        let json = format!(
            r#"{{"num_vector_embeds": 5, "sample_size": 2, "num_embeds_ada_norm": 3, "cross_attention_dim": 4, "activation_fn": "{name}"}}"#
        );
        assert_eq!(parse(&json).unwrap().activation_fn, expected, "{name}");
    }
}

/// An SD-style continuous config (`in_channels`, no `num_vector_embeds`).
#[test]
fn continuous_config_is_rejected() {
    let err = parse(
        r#"{"in_channels": 4, "num_attention_heads": 8, "attention_head_dim": 40,
        "cross_attention_dim": 768, "norm_num_groups": 32}"#,
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::ContinuousInput { in_channels: 4 }), "{err:?}");
    assert!(err.to_string().contains("`in_channels` = 4"), "{err}");
}

/// A DiT/PixArt-style patched config.
#[test]
fn patched_config_is_rejected() {
    let err = parse(
        r#"{"in_channels": 4, "patch_size": 2, "sample_size": 32, "norm_type": "ada_norm_zero",
        "num_embeds_ada_norm": 1000}"#,
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::PatchedInput { patch_size: 2 }), "{err:?}");
    assert!(err.to_string().contains("`patch_size` = 2"), "{err}");
}

#[test]
fn other_norm_types_are_rejected() {
    let base = r#""num_vector_embeds": 5, "sample_size": 2, "cross_attention_dim": 4"#;
    let zero = parse(&format!(r#"{{{base}, "num_embeds_ada_norm": 3, "norm_type": "ada_norm_zero"}}"#)).unwrap_err();
    assert!(matches!(&zero, ConfigError::NormType { norm_type } if norm_type == "ada_norm_zero"), "{zero:?}");
    assert!(zero.to_string().contains("\"ada_norm_zero\""), "{zero}");

    // Without num_embeds_ada_norm the default "layer_norm" is not upgraded.
    let plain = parse(&format!("{{{base}}}")).unwrap_err();
    assert!(matches!(&plain, ConfigError::NormType { norm_type } if norm_type == "layer_norm"), "{plain:?}");

    let missing = parse(&format!(r#"{{{base}, "norm_type": "ada_norm"}}"#)).unwrap_err();
    assert!(matches!(missing, ConfigError::Missing { field: "num_embeds_ada_norm" }), "{missing:?}");
}

#[test]
fn unsupported_values_name_field_and_value() {
    let base = r#""num_vector_embeds": 5, "sample_size": 2, "num_embeds_ada_norm": 3, "cross_attention_dim": 4"#;
    let cases = [
        (r#""activation_fn": "relu""#, "activation_fn", "\"relu\""),
        (r#""only_cross_attention": true"#, "only_cross_attention", "true"),
        (r#""double_self_attention": true"#, "double_self_attention", "true"),
        (r#""attention_type": "gated""#, "attention_type", "\"gated\""),
        (r#""norm_elementwise_affine": false"#, "norm_elementwise_affine", "false"),
        (r#""num_attention_heads": 0"#, "num_attention_heads", "0"),
    ];
    for (extra, field, value) in cases {
        let err = parse(&format!("{{{base}, {extra}}}")).unwrap_err();
        match &err {
            ConfigError::Unsupported { field: f, value: v, .. } => assert_eq!((*f, v.as_str()), (field, value)),
            other => panic!("{extra}: expected Unsupported, got {other:?}"),
        }
        assert!(err.to_string().starts_with(&format!("`{field}` = {value}")), "{err}");
    }
    let no_classes = parse(r#"{"sample_size": 2, "num_embeds_ada_norm": 3, "cross_attention_dim": 4}"#).unwrap_err();
    assert!(matches!(no_classes, ConfigError::Missing { field: "num_vector_embeds" }), "{no_classes:?}");
    let no_text = parse(r#"{"num_vector_embeds": 5, "sample_size": 2, "num_embeds_ada_norm": 3}"#).unwrap_err();
    assert!(matches!(no_text, ConfigError::Missing { field: "cross_attention_dim" }), "{no_text:?}");
}

#[test]
fn unreadable_config_names_the_file() {
    let err = Transformer2DConfig::from_file("/nonexistent/config.json".as_ref()).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/config.json"), "{err}");
    assert!(matches!(parse("{ not json"), Err(ConfigError::Json(_))));
}

#[test]
fn an_invalid_config_file_is_named_in_its_error() {
    let path = std::env::temp_dir().join(format!("transformer2d-invalid-config-{}.json", std::process::id()));
    std::fs::write(&path, r#"{"in_channels": 4, "num_attention_heads": 8, "attention_head_dim": 40}"#)
        .expect("write the config");
    let error = Transformer2DConfig::from_file(&path).unwrap_err();
    std::fs::remove_file(&path).ok();
    assert!(error.to_string().starts_with(&format!("{}: ", path.display())), "{error}");
    match error {
        ConfigError::InFile { path: named, source } => {
            assert_eq!(named, path);
            assert!(matches!(*source, ConfigError::ContinuousInput { in_channels: 4 }), "{source}");
        }
        other => panic!("expected InFile, got {other:?}"),
    }
}
