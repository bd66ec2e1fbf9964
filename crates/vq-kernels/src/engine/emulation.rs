//! The CUDA kernels run on the CPU: the launches the CUDA executor makes for a plan (each
//! kernel's grid and arguments, each product's operands) written out and run by
//! `emulation/runner.cpp`, which compiles `kernels.cu` (f32 storage) with the host's C++
//! compiler and runs every block's threads as OS threads. Its output must equal the plan's CPU
//! executor: a check of the kernels' indexing, reductions and barriers without a GPU.
//!
//! Needs a C++20 compiler (`g++` or `$CXX`): `cargo test -p vq-kernels -- --ignored emulated`.

use std::io::Write;
use std::process::Command;

use super::description::{Activation, WeightId};
use super::host::HostExecutor;
use super::launch::{address, arguments, Arg};
use super::plan::{Elem, Op, Plan, Role};
use super::tests::{inputs, sizes, weights};

/// Region bases of the runner's address space (see `translate` in runner.cpp).
const CONSTANTS: u64 = 1 << 40;
const WORKSPACE: u64 = 2 << 40;

fn weight_address(order: &[WeightId], id: WeightId) -> u64 {
    let index = order.iter().position(|w| *w == id).expect("a weight of the model") as u64;
    (3 << 40) | (index << 32)
}

/// Runs `plan` through runner.cpp on `(text, ids, timesteps)` with the weights of
/// [`weights`]; returns the output.
fn emulate(plan: &Plan, runner: &std::path::Path, dir: &std::path::Path) -> Vec<f32> {
    let s = &plan.sizes;
    let (text, ids, timesteps) = inputs(s);
    let values = weights(s);
    let order: Vec<WeightId> = s.expected_weights().into_iter().map(|(id, _)| id).collect();
    let ptr = |operand| address(plan, operand, CONSTANTS, WORKSPACE, |id| weight_address(&order, id));

    let mut program = format!("arenas {} {}\n", plan.constants_bytes, plan.workspace_bytes);
    let mut weight_bytes = Vec::new();
    for id in &order {
        program += &format!("weight {}\n", values[id].len());
        weight_bytes.extend(values[id].iter().flat_map(|x| x.to_le_bytes()));
    }
    let mut input_bytes: Vec<u8> = Vec::new();
    let input = |program: &mut String, input_bytes: &mut Vec<u8>, role: Role, bytes: Vec<u8>| {
        let b = plan.buffer(plan.buffer_of(role));
        assert_eq!(bytes.len(), b.bytes());
        *program += &format!("input {} {} {}\n", WORKSPACE + b.offset as u64, input_bytes.len(), bytes.len());
        input_bytes.extend(bytes);
    };
    // The text before the prologue, the ids and timesteps before the forward (the prologue's
    // scratch may share their memory).
    input(&mut program, &mut input_bytes, Role::Text, text.iter().flat_map(|x| x.to_le_bytes()).collect());
    for (index, step) in plan.timeline().enumerate() {
        if index == plan.prologue.len() {
            let ids = ids.iter().flat_map(|&id| (id as i32).to_le_bytes()).collect();
            input(&mut program, &mut input_bytes, Role::Ids, ids);
            let timesteps = timesteps.iter().flat_map(|&t| (t as i32).to_le_bytes()).collect();
            input(&mut program, &mut input_bytes, Role::Timesteps, timesteps);
        }
        match &step.op {
            Op::Kernel(k) => {
                let l = k.launch();
                let args = arguments(k, ptr, s.classes + 1).unwrap();
                program += &format!(
                    "kernel {} {} {} {} {} {} {} {}",
                    k.name(),
                    l.grid[0],
                    l.grid[1],
                    l.grid[2],
                    l.block[0],
                    l.block[1],
                    l.block[2],
                    args.len()
                );
                for arg in args {
                    program += &match arg {
                        Arg::Ptr(p) => format!(" p {p}"),
                        Arg::I32(v) => format!(" i {}", v as i64 as u64),
                        Arg::I64(v) => format!(" l {}", v as u64),
                        Arg::F32(v) => format!(" f {}", v.to_bits()),
                    };
                }
                program += "\n";
            }
            Op::Gemm(g) => {
                let d = super::plan::Operand::Buffer { buffer: g.d.buffer, offset: g.d.offset };
                let bias = g.bias.map_or(0, |id| weight_address(&order, id));
                program += &format!(
                    "gemm {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}\n",
                    g.m,
                    g.n,
                    g.k,
                    g.batch,
                    u8::from(g.a.transpose),
                    u8::from(g.b.transpose),
                    g.a.ld,
                    g.b.ld,
                    g.d.ld,
                    g.a.stride,
                    g.b.stride,
                    g.d.stride,
                    g.alpha,
                    g.beta,
                    ptr(g.a.operand),
                    ptr(g.b.operand),
                    ptr(d),
                    bias
                );
            }
        }
    }
    let out = plan.buffer(plan.buffer_of(Role::Output));
    program += &format!("output {} {}\n", WORKSPACE + out.offset as u64, out.bytes());

    let path = |name: &str| dir.join(name);
    std::fs::write(path("program.txt"), program).unwrap();
    std::fs::write(path("weights.bin"), weight_bytes).unwrap();
    std::fs::write(path("inputs.bin"), input_bytes).unwrap();
    let status = Command::new(runner)
        .args([path("program.txt"), path("weights.bin"), path("inputs.bin"), path("out.bin")])
        .status()
        .expect("running the emulator");
    assert!(status.success(), "the emulator failed");
    let bytes = std::fs::read(path("out.bin")).unwrap();
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// The plan's CUDA launches, run by the emulator, equal the CPU executor (f32 storage, every
/// activation, two blocks, per-sample timesteps; and odd sizes: 3 heads of 5, 9 pixels, 7 text
/// tokens, 40 classes, batch 3): within 2e-6, the difference of the products' summation orders.
#[test]
#[ignore]
fn the_cuda_kernels_emulated_on_the_cpu_equal_the_executor() {
    let dir = std::env::temp_dir().join(format!("vq-kernels-emulation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/src/engine/emulation/runner.cpp");
    let runner = dir.join("runner");
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    let status = Command::new(&compiler)
        .args(["-std=c++20", "-O1", "-pthread", "-w", source, "-o"])
        .arg(&runner)
        .status()
        .unwrap_or_else(|e| panic!("{compiler}: {e}"));
    assert!(status.success(), "{compiler} could not compile the emulator");
    let odd = super::description::TransformerSizes {
        batch: 3,
        height: 3,
        width: 3,
        heads: 3,
        head_dim: 5,
        text_len: 7,
        classes: 40,
        ..sizes(1)
    };
    let activations = [
        Activation::QuickGelu,
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Silu,
        Activation::Geglu,
        Activation::Swiglu,
    ];
    let cases = activations.map(|activation| super::description::TransformerSizes { activation, ..sizes(2) });
    for s in cases.into_iter().chain([odd]) {
        let activation = s.activation;
        let plan = Plan::new(&s, Elem::F32, Elem::I32).unwrap();
        let (text, ids, timesteps) = inputs(&s);
        let expected = HostExecutor::new(plan.clone(), weights(&s), &text).unwrap().forward(&ids, &timesteps);
        let got = emulate(&plan, &runner, &dir);
        let diff = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, |m, d| {
            if d.is_nan() {
                f32::INFINITY
            } else {
                m.max(d)
            }
        });
        writeln!(std::io::stderr(), "{activation:?}: emulated CUDA kernels against the CPU executor: {diff:.2e}")
            .unwrap();
        assert!(diff <= 2e-6, "{activation:?}: off by {diff:e}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
