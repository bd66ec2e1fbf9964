//! Config parsing and validation.

use vq_scheduler::{SchedulerError, VQDiffusionSchedulerConfig};

#[test]
fn parses_a_diffusers_config_with_defaults_and_unknown_fields() {
    let json = r#"{
        "_class_name": "VQDiffusionScheduler",
        "_diffusers_version": "0.42.1",
        "num_vec_classes": 4097,
        "num_train_timesteps": 100
    }"#;
    let config = VQDiffusionSchedulerConfig::from_json(json).unwrap();
    assert_eq!(config, VQDiffusionSchedulerConfig::new(4097));
    assert_eq!(config.num_classes(), 4096);
    assert_eq!(
        (config.alpha_cum_start, config.alpha_cum_end, config.gamma_cum_start, config.gamma_cum_end),
        (0.99999, 0.000009, 0.000009, 0.99999)
    );
}

#[test]
fn explicit_fields_override_defaults() {
    let json = r#"{"num_vec_classes": 13, "num_train_timesteps": 20, "alpha_cum_end": 0.001}"#;
    let config = VQDiffusionSchedulerConfig::from_json(json).unwrap();
    assert_eq!((config.num_vec_classes, config.num_train_timesteps), (13, 20));
    assert_eq!(config.alpha_cum_end, 0.001);
}

#[test]
fn missing_num_vec_classes_is_a_parse_error() {
    let err = VQDiffusionSchedulerConfig::from_json(r#"{"num_train_timesteps": 100}"#).unwrap_err();
    assert!(matches!(err, SchedulerError::ParseConfig { .. }), "{err:?}");
    assert!(err.to_string().contains("num_vec_classes"), "{err}");
}

#[test]
fn out_of_range_fields_are_named_with_their_value() {
    let cases = [
        (r#"{"num_vec_classes": 1}"#, "num_vec_classes", "1"),
        (r#"{"num_vec_classes": 5, "num_train_timesteps": 1}"#, "num_train_timesteps", "1"),
        (r#"{"num_vec_classes": 5, "alpha_cum_start": 1.5}"#, "alpha_cum_start", "1.5"),
        (r#"{"num_vec_classes": 5, "alpha_cum_end": 0.0}"#, "alpha_cum_end", "0"),
        (r#"{"num_vec_classes": 5, "gamma_cum_start": -0.1}"#, "gamma_cum_start", "-0.1"),
        (r#"{"num_vec_classes": 5, "gamma_cum_end": 1.0}"#, "gamma_cum_end", "1"),
    ];
    for (json, field, value) in cases {
        match VQDiffusionSchedulerConfig::from_json(json) {
            Err(err @ SchedulerError::InvalidConfig { .. }) => {
                let SchedulerError::InvalidConfig { field: f, value: v, .. } = &err else { unreachable!() };
                assert_eq!((*f, v.as_str()), (field, value));
                assert!(err.to_string().contains(field), "{err}");
            }
            other => panic!("{json}: expected InvalidConfig, got {other:?}"),
        }
    }
}

#[test]
fn a_schedule_with_non_positive_probabilities_is_rejected() {
    // ᾱ_0 + γ̄_0 > 1 makes β̄_0 negative.
    let config = VQDiffusionSchedulerConfig { gamma_cum_start: 0.5, ..VQDiffusionSchedulerConfig::new(5) };
    let err = config.init::<crate::common::B>(&crate::common::device()).unwrap_err();
    match err {
        SchedulerError::InvalidSchedule { table, index, value } => {
            assert_eq!((table, index), ("bt", 0));
            assert!(value < 0.0);
        }
        other => panic!("expected InvalidSchedule, got {other:?}"),
    }
}

#[test]
fn reads_a_config_file_and_reports_missing_files() {
    let dir = std::env::temp_dir().join(format!("vq-scheduler-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scheduler_config.json");
    std::fs::write(&path, r#"{"_class_name": "VQDiffusionScheduler", "num_vec_classes": 4097}"#).unwrap();
    assert_eq!(VQDiffusionSchedulerConfig::from_file(&path).unwrap(), VQDiffusionSchedulerConfig::new(4097));
    let missing = dir.join("absent.json");
    assert!(matches!(
        VQDiffusionSchedulerConfig::from_file(&missing),
        Err(SchedulerError::ReadConfig { path, .. }) if path == missing
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
