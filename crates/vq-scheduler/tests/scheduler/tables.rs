//! Schedule tables: ITHQ anchor values, consistency of cumulative and per-step tables,
//! device upload, timesteps.

use proptest::prelude::*;
use vq_scheduler::{ScheduleProbabilities, ScheduleTables, SchedulerError, VQDiffusionSchedulerConfig};

use crate::common::{scheduler, to_f32};

/// diffusers' tables at K = 4096, T = 100 (`docs/reference.md`, "Scheduler"), as printed by numpy for float32:
/// t, log a_t, log β_t, log γ_t, log ᾱ_t, log β̄_t, log γ̄_t.
const ITHQ_ANCHORS: [(usize, [&str; 6]); 7] = [
    (0, ["-1.000005e-05", "-22.133276", "-11.618286", "-1.000005e-05", "-22.133276", "-11.618286"]),
    (1, ["-0.010152279", "-26.728397", "-4.59513", "-0.01016228", "-22.133276", "-4.5942483"]),
    (2, ["-0.010256407", "-26.708092", "-4.5849776", "-0.020418687", "-22.133276", "-3.9015462"]),
    (49, ["-0.019802278", "-25.401827", "-3.931845", "-0.683098", "-22.133276", "-0.70330036"]),
    (50, ["-0.020202344", "-25.36222", "-3.9120429", "-0.70330036", "-22.133276", "-0.683098"]),
    (98, ["-0.692702", "-18.925373", "-0.6936421", "-4.5942483", "-22.133276", "-0.01016228"]),
    (99, ["-7.024038", "-17.540018", "-9.895291e-04", "-11.618286", "-22.133276", "-1.000005e-05"]),
];

#[test]
fn ithq_tables_equal_the_anchor_values_exactly() {
    let tables = ScheduleTables::new(&VQDiffusionSchedulerConfig::new(4097)).unwrap();
    assert_eq!(tables.log_at.len(), 100);
    assert_eq!(tables.log_cumprod_at.len(), 101);
    for (t, expected) in ITHQ_ANCHORS {
        let got = [
            tables.log_at[t],
            tables.log_bt[t],
            tables.log_ct[t],
            tables.log_cumprod_at[t],
            tables.log_cumprod_bt[t],
            tables.log_cumprod_ct[t],
        ];
        let expected = expected.map(|s| s.parse::<f32>().unwrap());
        assert_eq!(got, expected, "ITHQ tables at t = {t}");
    }
    // Index T of the cumulative tables: ᾱ_T = 1, β̄_T = γ̄_T = 0.
    assert_eq!(tables.log_cumprod_at[100], 0.0);
    assert_eq!(tables.log_cumprod_bt[100], f32::NEG_INFINITY);
    assert_eq!(tables.log_cumprod_ct[100], f32::NEG_INFINITY);
}

#[test]
fn ithq_plain_probabilities() {
    // The plain probabilities behind the tables at K = 4096, T = 100.
    let p = ScheduleProbabilities::new(&VQDiffusionSchedulerConfig::new(4097));
    let close = |a: f64, b: f64, rel: f64| (a - b).abs() <= rel * b.abs();
    assert_eq!(p.at[0], 0.99999);
    assert!(close(p.ct[0], 9e-6, 1e-9));
    assert!(close(p.bt[0], 2.441e-10, 1e-3));
    assert!(close(p.att[49], 0.50505, 1e-5) && close(p.ctt[49], 0.49495, 1e-5));
    assert!(close(p.att[99], 9e-6, 1e-9) && close(p.ctt[99], 0.99999, 1e-12));
    assert!(close(p.at[99], 8.902e-4, 1e-3) && close(p.ct[99], 0.99901, 1e-5));
    assert!(close(p.bt[99], 2.412e-8, 1e-3));
    for t in 0..100 {
        assert!(close(p.btt[t], 1e-6 / 4096.0, 1e-7), "β̄_{t} = {}", p.btt[t]);
    }
}

#[test]
fn device_tables_hold_the_host_tables() {
    let s = scheduler(6);
    let (host, device) = (s.tables(), s.device_tables());
    assert_eq!(to_f32(device.log_at.clone()), host.log_at);
    assert_eq!(to_f32(device.log_bt.clone()), host.log_bt);
    assert_eq!(to_f32(device.log_ct.clone()), host.log_ct);
    assert_eq!(to_f32(device.log_cumprod_at.clone()), host.log_cumprod_at);
    assert_eq!(to_f32(device.log_cumprod_bt.clone()), host.log_cumprod_bt);
    assert_eq!(to_f32(device.log_cumprod_ct.clone()), host.log_cumprod_ct);
}

#[test]
fn set_timesteps_counts_down_without_respacing() {
    let mut s = scheduler(4);
    assert_eq!(s.timesteps(), (0..100).rev().collect::<Vec<_>>());
    s.set_timesteps(10).unwrap();
    assert_eq!(s.timesteps(), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    s.set_timesteps(100).unwrap();
    assert_eq!(s.timesteps().len(), 100);
    for steps in [0, 101] {
        match s.set_timesteps(steps) {
            Err(SchedulerError::InvalidInferenceSteps { steps: got, num_train_timesteps: 100 }) => {
                assert_eq!(got, steps)
            }
            other => panic!("set_timesteps({steps}) gave {other:?}"),
        }
    }
}

/// Valid schedules: ᾱ decreasing from near 1, γ̄ increasing from near 0, ᾱ + γ̄ < 1 at both ends.
fn valid_config() -> impl Strategy<Value = VQDiffusionSchedulerConfig> {
    (2usize..5000, 2usize..300, 0.5f64..0.99999, 1e-6f64..0.4, 1e-6f64..0.4, 0.01f64..0.99).prop_filter_map(
        "ᾱ + γ̄ < 1 at both ends",
        |(classes, steps, a0, a1, g0, g1)| {
            let config = VQDiffusionSchedulerConfig {
                num_vec_classes: classes,
                num_train_timesteps: steps,
                alpha_cum_start: a0,
                alpha_cum_end: a1.min(a0),
                gamma_cum_start: g0.min(1.0 - a0) * 0.9,
                gamma_cum_end: g1.min(1.0 - a1.min(a0)) * 0.999,
            };
            ScheduleTables::new(&config).is_ok().then_some(config)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The cumulative tables are running products of the per-step ones: ᾱ_t = Π a_s and
    /// 1 − γ̄_t = Π (1 − γ_s) in f64 to a relative 1e−12 (the schedule is built by division, so
    /// the product telescopes up to rounding), and β̄_t = (1 − ᾱ_t − γ̄_t)/K. For the f32 log
    /// tables, log ᾱ_t = Σ log a_s to 1e−6 + T · 1 ulp of the summands (each is rounded once).
    #[test]
    fn cumulative_tables_are_running_products(config in valid_config()) {
        let p = ScheduleProbabilities::new(&config);
        let tables = ScheduleTables::new(&config).unwrap();
        let k = config.num_classes() as f64;
        let (mut alpha, mut keep_unmasked, mut log_alpha_sum, mut rounding) = (1.0f64, 1.0f64, 0.0f64, 0.0f64);
        for t in 0..config.num_train_timesteps {
            alpha *= p.at[t];
            keep_unmasked *= 1.0 - p.ct[t];
            prop_assert!((p.att[t] - alpha).abs() <= 1e-12 * alpha, "ᾱ_{} = {} vs Π a = {}", t, p.att[t], alpha);
            let gamma_cum = 1.0 - keep_unmasked;
            prop_assert!(((1.0 - p.ctt[t]) - keep_unmasked).abs() <= 1e-12 * keep_unmasked,
                "γ̄_{} = {} vs 1 − Π(1 − γ) = {}", t, p.ctt[t], gamma_cum);
            prop_assert!((p.btt[t] - (1.0 - p.att[t] - p.ctt[t]) / k).abs() <= 1e-15);
            // Per-step consistency β_t = (1 − a_t − γ_t)/K, all in (0, 1].
            prop_assert!((p.bt[t] - (1.0 - p.at[t] - p.ct[t]) / k).abs() <= 1e-15);

            log_alpha_sum += f64::from(tables.log_at[t]);
            rounding += f64::from(tables.log_at[t]).abs() * f64::from(f32::EPSILON);
            let log_alpha_cum = f64::from(tables.log_cumprod_at[t]);
            prop_assert!((log_alpha_cum - log_alpha_sum).abs() <= 1e-6 + rounding + log_alpha_cum.abs() * f64::from(f32::EPSILON),
                "log ᾱ_{} = {} vs Σ log a = {}", t, log_alpha_cum, log_alpha_sum);
        }
        let steps = config.num_train_timesteps;
        prop_assert_eq!(p.att[steps], 1.0);
        prop_assert_eq!(p.ctt[steps], 0.0);
        prop_assert_eq!(p.btt[steps], 0.0);
    }
}
