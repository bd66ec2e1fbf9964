//! The CUDA kernels' source and the argument list of each plan kernel, in the order and C types
//! of the kernel's signature in `kernels.cu`. Kept apart from the CUDA executor so that a CPU
//! test holds every argument list against the source's signatures.

use super::description::WeightId;
use super::plan::{Arena, Kernel, Operand, Plan};
use super::EngineError;

/// The kernels' CUDA source (see its header).
pub(crate) const SOURCE: &str = include_str!("kernels.cu");

/// Every kernel of the source.
pub(crate) const KERNELS: [&str; 13] = [
    "positions",
    "silu",
    "embed",
    "ada_layer_norm",
    "layer_norm",
    "softmax_rows",
    "act_gelu",
    "act_gelu_tanh",
    "act_quick_gelu",
    "act_silu",
    "act_geglu",
    "act_swiglu",
    "class_log_softmax",
];

/// One kernel argument, as its C type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Arg {
    /// A device pointer.
    Ptr(u64),
    /// `int`.
    I32(i32),
    /// `long long`.
    I64(i64),
    /// `float`.
    F32(f32),
}

/// The device address of `operand`: its buffer's offset from the base address of the buffer's
/// arena (`constants`, `workspace`), or `weight`'s address of the weight.
pub(crate) fn address(
    plan: &Plan,
    operand: Operand,
    constants: u64,
    workspace: u64,
    weight: impl Fn(WeightId) -> u64,
) -> u64 {
    match operand {
        Operand::Weight(id) => weight(id),
        Operand::Buffer { buffer, offset } => {
            let b = plan.buffer(buffer);
            let base = match b.arena {
                Arena::Constants => constants,
                Arena::Workspace => workspace,
            };
            base + (b.offset + offset * b.elem.size()) as u64
        }
    }
}

fn int(value: usize, what: &str) -> Result<Arg, EngineError> {
    i32::try_from(value)
        .map(Arg::I32)
        .map_err(|_| EngineError::Plan(format!("{what} = {value} does not fit the kernels' 32-bit sizes")))
}

fn long(value: usize) -> Arg {
    Arg::I64(value as i64)
}

/// The arguments of `kernel`, with `ptr` giving the device address of an operand and
/// `class_count` the rows of the class embedding (K + 1).
pub(crate) fn arguments(
    kernel: &Kernel,
    ptr: impl Fn(Operand) -> u64,
    class_count: usize,
) -> Result<Vec<Arg>, EngineError> {
    let buffer = |buffer| Arg::Ptr(ptr(Operand::Buffer { buffer, offset: 0 }));
    let weight = |id| Arg::Ptr(ptr(Operand::Weight(id)));
    Ok(match *kernel {
        Kernel::Positions { height, width, out, grid_width, pixels, dim } => vec![
            weight(height),
            weight(width),
            buffer(out),
            int(grid_width, "grid width")?,
            int(pixels, "pixels")?,
            int(dim, "dim")?,
        ],
        Kernel::Silu { input, out, rows, dim } => vec![Arg::Ptr(ptr(input)), buffer(out), long(rows * dim)],
        Kernel::Embed { ids, classes, positions, out, rows, pixels, dim } => vec![
            buffer(ids),
            weight(classes),
            buffer(positions),
            buffer(out),
            long(rows),
            int(pixels, "pixels")?,
            int(dim, "dim")?,
            long(class_count),
        ],
        Kernel::AdaLayerNorm { x, table, timesteps, out, pixels, dim, eps, .. } => vec![
            buffer(x),
            buffer(table),
            buffer(timesteps),
            buffer(out),
            int(pixels, "pixels")?,
            int(dim, "dim")?,
            Arg::F32(eps),
        ],
        Kernel::LayerNorm { x, gamma, beta, out, dim, eps, .. } => {
            vec![buffer(x), weight(gamma), weight(beta), buffer(out), int(dim, "dim")?, Arg::F32(eps)]
        }
        Kernel::Softmax { scores, rows, cols, ld } => {
            vec![buffer(scores), long(rows), int(cols, "score columns")?, int(ld, "score row stride")?]
        }
        Kernel::Activation { input, out, rows, width, .. } => {
            vec![buffer(input), buffer(out), long(rows), int(width, "activation width")?]
        }
        Kernel::ClassLogSoftmax { logits, bias, out, batch, classes, pixels } => vec![
            buffer(logits),
            weight(bias),
            buffer(out),
            int(batch, "batch")?,
            int(classes, "classes")?,
            int(pixels, "pixels")?,
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::description::{Activation, TransformerSizes};
    use crate::engine::plan::{Elem, Op, Plan};

    /// The C parameter types of kernel `name` in the source, as `Arg` kinds.
    fn signature(name: &str) -> Vec<&'static str> {
        let prefix = "extern \"C\" __global__ void __launch_bounds__(";
        let direct = SOURCE.match_indices(prefix).find_map(|(at, _)| {
            let rest = &SOURCE[at + prefix.len()..];
            let name_at = rest.find(") ")? + 2;
            rest[name_at..].starts_with(&format!("{name}(")).then(|| at + prefix.len() + name_at + name.len() + 1)
        });
        let (start, params) = if let Some(start) = direct {
            (start, None)
        } else {
            // The activations are stamped out by macros with `(const T* in, T* out, long long rows, int width)`.
            let gated = SOURCE.contains(&format!("GATED_ACTIVATION({name},"));
            let plain = SOURCE.contains(&format!("ELEMENTWISE_ACTIVATION({name},"));
            assert!(gated || plain, "kernel `{name}` is not in kernels.cu");
            (0, Some("const T* in, T* out, long long rows, int width"))
        };
        let params = params.unwrap_or_else(|| {
            let end = SOURCE[start..].find(')').expect("closing parenthesis") + start;
            &SOURCE[start..end]
        });
        params
            .split(',')
            .map(|p| {
                let p = p.trim();
                if p.contains('*') {
                    "ptr"
                } else if p.starts_with("int ") {
                    "i32"
                } else if p.starts_with("long long ") {
                    "i64"
                } else if p.starts_with("float ") {
                    "f32"
                } else {
                    panic!("unknown parameter `{p}` of `{name}`")
                }
            })
            .collect()
    }

    fn kind(arg: &Arg) -> &'static str {
        match arg {
            Arg::Ptr(_) => "ptr",
            Arg::I32(_) => "i32",
            Arg::I64(_) => "i64",
            Arg::F32(_) => "f32",
        }
    }

    /// Every kernel of plans with every activation gets the arguments its signature in
    /// kernels.cu takes, type by type, and is in the list the CUDA engine loads.
    #[test]
    fn argument_lists_match_the_cuda_signatures() {
        for activation in [
            Activation::Gelu,
            Activation::GeluTanh,
            Activation::QuickGelu,
            Activation::Silu,
            Activation::Geglu,
            Activation::Swiglu,
        ] {
            let sizes = TransformerSizes {
                batch: 2,
                height: 3,
                width: 2,
                heads: 2,
                head_dim: 4,
                text_len: 5,
                text_dim: 6,
                ff_inner: 32,
                activation,
                classes: 7,
                timesteps: 10,
                layers: 1,
                attention_bias: true,
                ada_norm_eps: 1e-5,
                ff_norm_eps: 1e-5,
                norm_out_eps: 1e-5,
            };
            let plan = Plan::new(&sizes, Elem::F16, Elem::I32).unwrap();
            for step in plan.timeline() {
                if let Op::Kernel(kernel) = &step.op {
                    assert!(KERNELS.contains(&kernel.name()), "{} is not loaded", kernel.name());
                    let args = arguments(kernel, |_| 256, 8).unwrap();
                    let kinds: Vec<&str> = args.iter().map(kind).collect();
                    assert_eq!(kinds, signature(kernel.name()), "{step}");
                }
            }
        }
        for name in KERNELS {
            signature(name);
        }
    }
}
