//! The plan's checks fail on what they guard against, and the CPU executor's output moves when
//! a buffer is reused too early or a stride is wrong (the model-level parity tests are in the
//! `transformer2d` crate, which owns the reference forward).

use std::collections::BTreeMap;

use super::description::{Activation, Layer, Param, TransformerSizes, WeightId};
use super::host::HostExecutor;
use super::plan::{Elem, Op, Plan, Role};
use super::EngineError;

pub(super) fn sizes(layers: usize) -> TransformerSizes {
    TransformerSizes {
        batch: 2,
        height: 3,
        width: 2,
        heads: 2,
        head_dim: 4,
        text_len: 5,
        text_dim: 6,
        ff_inner: 32,
        activation: Activation::QuickGelu,
        classes: 7,
        timesteps: 10,
        layers,
        attention_bias: true,
        ada_norm_eps: 1e-5,
        ff_norm_eps: 1e-5,
        norm_out_eps: 1e-5,
    }
}

/// Deterministic values in [−scale, scale).
fn values(seed: u64, len: usize, scale: f32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            scale * ((state >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        })
        .collect()
}

pub(super) fn weights(sizes: &TransformerSizes) -> BTreeMap<WeightId, Vec<f32>> {
    sizes
        .expected_weights()
        .into_iter()
        .enumerate()
        .map(|(i, (id, shape))| (id, values(i as u64 + 1, shape.iter().product(), 0.5)))
        .collect()
}

pub(super) fn inputs(sizes: &TransformerSizes) -> (Vec<f32>, Vec<i64>, Vec<usize>) {
    let text = values(1000, sizes.batch * sizes.text_len * sizes.text_dim, 1.0);
    let ids = (0..sizes.batch * sizes.pixels()).map(|i| (i * 5 % (sizes.classes + 1)) as i64).collect();
    let timesteps = (0..sizes.batch).map(|b| (3 + 5 * b) % sizes.timesteps).collect();
    (text, ids, timesteps)
}

fn run(plan: Plan, checked: bool) -> Vec<f32> {
    let sizes = plan.sizes.clone();
    let (text, ids, timesteps) = inputs(&sizes);
    let mut executor = if checked {
        HostExecutor::new(plan, weights(&sizes), &text).unwrap()
    } else {
        HostExecutor::unchecked(plan, weights(&sizes), &text).unwrap()
    };
    executor.forward(&ids, &timesteps)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| if x == y { 0.0 } else { (x - y).abs() }).fold(0.0, |m, d| {
        if d.is_nan() {
            f32::INFINITY
        } else {
            m.max(d)
        }
    })
}

fn plan_error(result: Result<(), EngineError>) -> String {
    match result {
        Err(EngineError::Plan(message)) => message,
        other => panic!("expected a plan error, got {other:?}"),
    }
}

/// A correct plan passes every check; each kind of mistake fails its check, naming it.
#[test]
fn the_checks_fail_on_what_they_guard_against() {
    let s = sizes(2);
    let expected = s.expected_weights();
    let plan = Plan::new(&s, Elem::F16, Elem::I32).unwrap();
    plan.check(&expected).unwrap();

    // Two buffers live at the same time in the same memory.
    let mut shared = plan.clone();
    let q = shared.buffers.iter().position(|b| b.name == "block 0 attn1.to_q").unwrap();
    let k = shared.buffers.iter().position(|b| b.name == "block 0 attn1.to_k").unwrap();
    shared.buffers[k].offset = shared.buffers[q].offset;
    let message = plan_error(shared.check_memory());
    assert!(message.contains("attn1.to_q") && message.contains("attn1.to_k"), "{message}");

    // A leading dimension that walks past the end of its buffer.
    let mut strided = plan.clone();
    let gemm =
        strided.forward.iter_mut().find_map(|s| if let Op::Gemm(g) = &mut s.op { Some(g) } else { None }).unwrap();
    gemm.b.ld *= 2;
    assert!(plan_error(strided.check_accesses()).contains("reads or writes element"));

    // A weight no step reads, a weight read twice, a weight of another shape.
    let mut unread = plan.clone();
    let gemm = unread.forward.iter_mut().find_map(|s| {
        if let Op::Gemm(g) = &mut s.op {
            g.bias.is_some().then_some(g)
        } else {
            None
        }
    });
    gemm.unwrap().bias = None;
    assert!(plan_error(unread.check_weights(&expected)).contains("no step reads"));
    let mut twice = plan.clone();
    let (q_bias, k_bias) =
        (WeightId::block(0, Layer::Attn1Q, Param::Bias), WeightId::block(0, Layer::Attn1K, Param::Bias));
    let gemm = twice.forward.iter_mut().find_map(|s| {
        if let Op::Gemm(g) = &mut s.op {
            (g.bias == Some(k_bias)).then_some(g)
        } else {
            None
        }
    });
    gemm.unwrap().bias = Some(q_bias);
    assert!(plan_error(twice.check_weights(&expected)).contains("read twice"));
    let mut other = expected.clone();
    other.iter_mut().find(|(id, _)| id.layer == Layer::FfIn).unwrap().1 = vec![s.dim(), 3];
    assert!(plan_error(plan.check_weights(&other)).contains("ff.net.0.proj"));
}

/// Blocks reuse the workspace: twelve blocks need about as much of it as one (the greedy
/// placement is not always optimal), and the constants grow by each block's keys, values and
/// tables.
#[test]
fn blocks_reuse_the_workspace() {
    let plans: Vec<Plan> =
        [1, 3, 12].iter().map(|&layers| Plan::new(&sizes(layers), Elem::F32, Elem::I64).unwrap()).collect();
    for plan in &plans[1..] {
        assert!(
            plan.workspace_bytes * 4 <= plans[0].workspace_bytes * 5,
            "{} > 1.25 × {}",
            plan.workspace_bytes,
            plans[0].workspace_bytes
        );
    }
    let scratch: usize = plans[2].buffers.iter().filter(|b| b.role == Role::Scratch).map(|b| b.bytes()).sum();
    assert!(plans[2].workspace_bytes * 8 < scratch, "{} of {scratch}", plans[2].workspace_bytes);
    let s = sizes(1);
    let per_block = 4 * (2 * s.batch * s.text_len * s.dim() + 2 * s.timesteps * 2 * s.dim());
    assert!(plans[1].constants_bytes >= plans[0].constants_bytes + 2 * per_block);
}

/// At the ITHQ size the arenas stay what one block needs plus the per-block constants (printed
/// for the record): batch 2 in f16, one self-attention score tensor [2, 16, 1024, 1024] is
/// 67 MB and dominates the workspace.
#[test]
fn the_ithq_plan_fits_its_arenas() {
    for batch in [2, 8] {
        let ithq = TransformerSizes {
            batch,
            height: 32,
            width: 32,
            heads: 16,
            head_dim: 88,
            text_len: 77,
            text_dim: 512,
            ff_inner: 4 * 1408,
            classes: 4096,
            timesteps: 100,
            layers: 36,
            ..sizes(1)
        };
        let plan = Plan::new(&ithq, Elem::F16, Elem::I32).unwrap();
        plan.check(&ithq.expected_weights()).unwrap();
        let scores = batch * 16 * 1024 * 1024 * 2;
        eprintln!(
            "ITHQ, batch {batch}, f16: {} forward steps, {:.1} TFLOP, constants {:.1} MB, workspace {:.1} MB",
            plan.forward.len(),
            plan.forward_flops() / 1e12,
            plan.constants_bytes as f64 / 1e6,
            plan.workspace_bytes as f64 / 1e6
        );
        assert!(plan.workspace_bytes < 2 * scores + 40 * batch * 1024 * 1408 * 2, "{}", plan.workspace_bytes);
        let constants = 36 * (2 * batch * 77 * 1408 + 2 * 100 * 2 * 1408) * 2 + 1024 * 1408 * 2;
        assert!(plan.constants_bytes < constants + 36 * 4 * 256, "{} against {constants}", plan.constants_bytes);
    }
}

/// The executor is the plan's test: it gives finite, repeatable values for a correct plan, and
/// other values when a buffer is reused while live or a stride is wrong.
#[test]
fn the_executor_shows_a_reused_buffer_and_a_wrong_stride() {
    for elem in [Elem::F32, Elem::BF16] {
        let plan = Plan::new(&sizes(2), elem, Elem::I64).unwrap();
        let good = run(plan.clone(), true);
        assert!(good.iter().all(|x| x.is_finite()));
        assert_eq!(run(plan.clone(), true), good, "the executor should be deterministic");
        // Log-probabilities: every pixel's classes sum to 1.
        let s = &plan.sizes;
        for b in 0..s.batch {
            for p in 0..s.pixels() {
                let total: f64 =
                    (0..s.classes).map(|c| (good[(b * s.classes + c) * s.pixels() + p] as f64).exp()).sum();
                assert!((total - 1.0).abs() < 1e-5, "{total}");
            }
        }

        let mut shared = plan.clone();
        let v = shared.buffers.iter().position(|b| b.name == "block 1 attn1.to_v").unwrap();
        let q = shared.buffers.iter().position(|b| b.name == "block 1 attn1.to_q").unwrap();
        shared.buffers[v].offset = shared.buffers[q].offset;
        let diff = max_diff(&run(shared, false), &good);
        assert!(diff > 1e-2, "{}: q and v sharing memory moved the output by {diff:e} only", elem.name());

        let mut strided = plan;
        let values = strided.forward.iter_mut().find(|s| s.label == "block 0 attn1 values (sample 1)").unwrap();
        let Op::Gemm(gemm) = &mut values.op else { panic!("a product") };
        gemm.d.stride = 0;
        let diff = max_diff(&run(strided, false), &good);
        assert!(diff > 1e-2, "{}: a zero head stride moved the output by {diff:e} only", elem.name());
    }
}
