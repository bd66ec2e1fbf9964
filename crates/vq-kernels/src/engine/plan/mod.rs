//! The plan of a transformer engine: every matrix product and kernel of one forward, in order,
//! with its shapes, leading dimensions, strides and launch size, and every buffer with its
//! lifetime and place in one of two memory arenas. An executor (the CPU one in
//! [`host`](super::host), the CUDA one) only follows it; the plan is built, allocated and
//! checked here, once, on the CPU, so that a wrong stride or two live buffers sharing memory
//! fail a CPU test instead of a GPU run.
//!
//! # Conventions
//!
//! Matrix products follow BLAS (cuBLAS, cuBLASLt): matrices are **column-major**, and a product
//! computes `D = α · op(A) · op(B) + β · D (+ bias per row of D)` for `batch` matrices at fixed
//! element strides. burn's row-major `[rows, width]` activation is, read column-major, a
//! `width × rows` matrix with leading dimension `width`; a burn linear weight `[in, out]` is an
//! `out × in` matrix with leading dimension `out`. So a linear layer `y = x·W + b` over `rows`
//! rows is `D (out × rows) = W (out × in) · X (in × rows)` with the bias along the rows of D,
//! and needs no transposed operand.
//!
//! Attention keeps q, k and v as the projections write them, `[batch, n, heads·head_dim]`: head
//! h of sample b is the `head_dim × n` matrix at element `b·n·D + h·head_dim` with leading
//! dimension D. Its products run once per sample, batched over the heads (stride `head_dim`),
//! and write the scores of sample b as `heads` row-major `[n, l]` blocks whose rows are padded
//! to a multiple of 8 elements (16-byte aligned rows in half precision).
//!
//! # Phases
//!
//! The **prologue** runs once per generation: the positional table, every AdaLayerNorm's
//! scale/shift table for all timesteps (`linear(silu(emb))`, `[T, 2D]`) and every block's
//! cross-attention keys and values of the text, into the constants arena. The **forward** runs
//! every step, reading the class ids and one timestep per sample, and writes the f32
//! log-probabilities `[batch, K, n]`. Residual additions are products with β = 1 into the
//! hidden state; the output projection writes the logits transposed (`[K, batch·n]`), so that
//! the class log-softmax reads and writes along pixels.

mod build;
mod check;
mod memory;

use std::fmt;

use burn::tensor::DType;

use super::description::{Activation, TransformerSizes, WeightId};

/// Alignment of every buffer in its arena, in bytes.
pub const BUFFER_ALIGN: usize = 256;

/// The element type of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Elem {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
}

impl Elem {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
            Self::I64 => 8,
        }
    }

    /// The element type of a burn dtype the engine handles.
    pub fn of(dtype: DType) -> Option<Self> {
        Some(match dtype {
            DType::F32 => Self::F32,
            DType::F16 => Self::F16,
            DType::BF16 => Self::BF16,
            DType::I32 => Self::I32,
            DType::I64 => Self::I64,
            _ => return None,
        })
    }

    /// Whether this is a float type.
    pub fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F16 | Self::BF16)
    }

    /// `f32`, `f16`, …
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::BF16 => "bf16",
            Self::I32 => "i32",
            Self::I64 => "i64",
        }
    }
}

/// Index of a buffer in [`Plan::buffers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufferId(pub usize);

/// Where a buffer lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arena {
    /// Written by the prologue, read by every forward of the generation.
    Constants,
    /// Reused between buffers whose lifetimes do not overlap.
    Workspace,
}

/// What a buffer holds and who writes or reads it outside the plan's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The text embeddings `[batch, l, text_dim]`, written by the executor before the prologue.
    Text,
    /// The class ids `[batch, n]`, written before each forward.
    Ids,
    /// One timestep per sample `[batch]` (i32), written before each forward.
    Timesteps,
    /// The log-probabilities `[batch, K, n]` (f32), read after each forward.
    Output,
    /// A per-generation constant (constants arena).
    Constant,
    /// An intermediate of one phase.
    Scratch,
}

/// One buffer of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Buffer {
    /// What it holds, for messages.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its element type.
    pub elem: Elem,
    /// Its length in elements.
    pub len: usize,
    /// Its arena.
    pub arena: Arena,
    /// Its offset in bytes in its arena.
    pub offset: usize,
    /// First and last step (indices into [`Plan::timeline`]) during which it holds live data.
    pub lifetime: (usize, usize),
}

impl Buffer {
    /// Its size in bytes.
    pub fn bytes(&self) -> usize {
        self.len * self.elem.size()
    }

    /// Its byte range in its arena.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.bytes()
    }
}

/// A place an operand is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// Elements of a buffer from `offset` on.
    Buffer {
        /// The buffer.
        buffer: BufferId,
        /// First element.
        offset: usize,
    },
    /// A weight tensor of the model, from its first element.
    Weight(WeightId),
}

/// One operand matrix of a product, column-major.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matrix {
    /// Where it is.
    pub operand: Operand,
    /// Whether the product uses its transpose (`op(X) = Xᵀ`).
    pub transpose: bool,
    /// Leading dimension (elements between columns).
    pub ld: usize,
    /// Elements between the matrices of a batch.
    pub stride: usize,
}

/// The output matrix of a product, column-major.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// The buffer.
    pub buffer: BufferId,
    /// First element.
    pub offset: usize,
    /// Leading dimension.
    pub ld: usize,
    /// Elements between the matrices of a batch.
    pub stride: usize,
}

/// `D = α · op(A) · op(B) + β · D + bias` for `batch` matrices: op(A) is `m × k`, op(B)
/// `k × n`, D `m × n`; the bias (length m) is added to every column. Accumulates in f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Gemm {
    /// Rows of D.
    pub m: usize,
    /// Columns of D.
    pub n: usize,
    /// The contracted dimension.
    pub k: usize,
    /// Number of products.
    pub batch: usize,
    /// The left operand.
    pub a: Matrix,
    /// The right operand.
    pub b: Matrix,
    /// The output (also read when β ≠ 0).
    pub d: Output,
    /// Scale of the product.
    pub alpha: f32,
    /// Scale of D's previous values: 0 (overwrite) or 1 (accumulate: a residual addition).
    pub beta: f32,
    /// A weight vector of length m added to every column of D.
    pub bias: Option<WeightId>,
}

impl Gemm {
    /// Floating-point operations.
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.m * self.n * self.k) as f64
    }

    /// The stored (column-major) rows and columns of the left operand.
    pub fn a_stored(&self) -> (usize, usize) {
        if self.a.transpose {
            (self.k, self.m)
        } else {
            (self.m, self.k)
        }
    }

    /// The stored rows and columns of the right operand.
    pub fn b_stored(&self) -> (usize, usize) {
        if self.b.transpose {
            (self.n, self.k)
        } else {
            (self.k, self.n)
        }
    }
}

/// The grid of a kernel launch: blocks × threads per block (x, y, z).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    /// Blocks.
    pub grid: [u32; 3],
    /// Threads per block.
    pub block: [u32; 3],
}

impl Launch {
    /// `elements` threads of one element each, in blocks of 256.
    pub fn elementwise(elements: usize) -> Self {
        Self { grid: [elements.div_ceil(256).max(1) as u32, 1, 1], block: [256, 1, 1] }
    }

    /// One block of 256 threads per row.
    pub fn block_per_row(rows: usize) -> Self {
        Self { grid: [rows as u32, 1, 1], block: [256, 1, 1] }
    }

    /// One warp per row, eight rows per block.
    pub fn warp_per_row(rows: usize) -> Self {
        Self { grid: [rows.div_ceil(8) as u32, 1, 1], block: [256, 1, 1] }
    }

    /// Blocks of 32 columns × 32 threads that share each column's reduction.
    pub fn columns(columns: usize) -> Self {
        Self { grid: [columns.div_ceil(32) as u32, 1, 1], block: [32, 32, 1] }
    }

    /// Threads in all.
    pub fn threads(&self) -> usize {
        self.grid.iter().chain(&self.block).map(|&x| x as usize).product()
    }
}

/// What a kernel computes. Every kernel reads its inputs in their element type, computes in
/// f32 and rounds once on store.
#[derive(Debug, Clone, PartialEq)]
pub enum Kernel {
    /// `out[p, j] = height[p / w, j] + width[p % w, j]` for the n pixels (launch: one thread
    /// per element of out).
    Positions {
        /// `[h, D]` row embeddings.
        height: WeightId,
        /// `[w, D]` column embeddings.
        width: WeightId,
        /// `[n, D]`.
        out: BufferId,
        /// Latent grid width w.
        grid_width: usize,
        /// n.
        pixels: usize,
        /// D.
        dim: usize,
    },
    /// `out = x / (1 + e^(−x))` elementwise over `[rows, dim]` (one thread per element).
    Silu {
        /// The input.
        input: Operand,
        /// The output.
        out: BufferId,
        /// Rows.
        rows: usize,
        /// Row width.
        dim: usize,
    },
    /// `out[b, p] = classes[ids[b, p]] + positions[p]` (one thread per element of out).
    Embed {
        /// `[batch, n]` class ids.
        ids: BufferId,
        /// `[K + 1, D]` class embeddings.
        classes: WeightId,
        /// `[n, D]`.
        positions: BufferId,
        /// `[batch, n, D]`.
        out: BufferId,
        /// batch · n.
        rows: usize,
        /// n.
        pixels: usize,
        /// D.
        dim: usize,
    },
    /// `out = LayerNorm(x) · (1 + table[t_b, :D]) + table[t_b, D:]`, the LayerNorm without
    /// affine, t_b the timestep of the row's sample (one block per row).
    AdaLayerNorm {
        /// `[batch, n, D]`.
        x: BufferId,
        /// `[T, 2D]` scale then shift per timestep.
        table: BufferId,
        /// `[batch]` timesteps.
        timesteps: BufferId,
        /// `[batch, n, D]`.
        out: BufferId,
        /// batch · n.
        rows: usize,
        /// n: rows per sample.
        pixels: usize,
        /// D.
        dim: usize,
        /// Epsilon.
        eps: f32,
    },
    /// `out = LayerNorm(x) · γ + β` (one block per row).
    LayerNorm {
        /// `[rows, D]`.
        x: BufferId,
        /// γ `[D]`.
        gamma: WeightId,
        /// β `[D]`.
        beta: WeightId,
        /// `[rows, D]`.
        out: BufferId,
        /// Rows.
        rows: usize,
        /// D.
        dim: usize,
        /// Epsilon.
        eps: f32,
    },
    /// Softmax of each row's first `cols` elements, in place; rows are `ld` apart (one warp per
    /// row).
    Softmax {
        /// The scores.
        scores: BufferId,
        /// Rows.
        rows: usize,
        /// Elements per row.
        cols: usize,
        /// Elements between rows.
        ld: usize,
    },
    /// The feed-forward activation of `[rows, in_width]` into `[rows, width]` (in place when
    /// not gated: `input == out`; one thread per output element).
    Activation {
        /// Which.
        kind: Activation,
        /// `[rows, width]`, or `[rows, 2·width]` (value, gate) when gated.
        input: BufferId,
        /// `[rows, width]`.
        out: BufferId,
        /// Rows.
        rows: usize,
        /// Output width.
        width: usize,
    },
    /// `out[b, c, p] = log_softmax_c(logits[c, b·n + p] + bias[c])` in f32 (blocks of 32
    /// columns).
    ClassLogSoftmax {
        /// `[K, batch·n]` logits.
        logits: BufferId,
        /// `[K]` bias of the output projection.
        bias: WeightId,
        /// `[batch, K, n]` f32.
        out: BufferId,
        /// batch.
        batch: usize,
        /// K.
        classes: usize,
        /// n.
        pixels: usize,
    },
}

impl Kernel {
    /// Its launch geometry: the CUDA kernels are written for exactly these.
    pub fn launch(&self) -> Launch {
        match *self {
            Self::Positions { pixels, dim, .. } => Launch::elementwise(pixels * dim),
            Self::Silu { rows, dim, .. } => Launch::elementwise(rows * dim),
            Self::Embed { rows, dim, .. } => Launch::elementwise(rows * dim),
            Self::AdaLayerNorm { rows, .. } | Self::LayerNorm { rows, .. } => Launch::block_per_row(rows),
            Self::Softmax { rows, .. } => Launch::warp_per_row(rows),
            Self::Activation { rows, width, .. } => Launch::elementwise(rows * width),
            Self::ClassLogSoftmax { batch, pixels, .. } => Launch::columns(batch * pixels),
        }
    }

    /// Its name in the CUDA source.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Positions { .. } => "positions",
            Self::Silu { .. } => "silu",
            Self::Embed { .. } => "embed",
            Self::AdaLayerNorm { .. } => "ada_layer_norm",
            Self::LayerNorm { .. } => "layer_norm",
            Self::Softmax { .. } => "softmax_rows",
            Self::Activation { kind, .. } => match kind {
                Activation::Gelu => "act_gelu",
                Activation::GeluTanh => "act_gelu_tanh",
                Activation::QuickGelu => "act_quick_gelu",
                Activation::Silu => "act_silu",
                Activation::Geglu => "act_geglu",
                Activation::Swiglu => "act_swiglu",
            },
            Self::ClassLogSoftmax { .. } => "class_log_softmax",
        }
    }
}

/// One step of a phase.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A matrix product.
    Gemm(Gemm),
    /// A kernel.
    Kernel(Kernel),
}

/// A step with a label naming the layer it computes.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// E.g. `block 3 attn1 scores (sample 1)`.
    pub label: String,
    /// What it does.
    pub op: Op,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            Op::Gemm(g) => write!(
                f,
                "{}: gemm {}×{}×{} batch {} (A{} ld {}, B{} ld {}, D ld {}, β {}{})",
                self.label,
                g.m,
                g.n,
                g.k,
                g.batch,
                if g.a.transpose { "ᵀ" } else { "" },
                g.a.ld,
                if g.b.transpose { "ᵀ" } else { "" },
                g.b.ld,
                g.d.ld,
                g.beta,
                if g.bias.is_some() { ", bias" } else { "" }
            ),
            Op::Kernel(k) => {
                let l = k.launch();
                write!(f, "{}: {} grid {:?} block {:?}", self.label, k.name(), l.grid, l.block)
            }
        }
    }
}

/// How a step touches a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads it.
    Read,
    /// Overwrites it.
    Write,
    /// Reads, then writes it.
    ReadWrite,
}

/// The plan of one engine: sizes, element types, buffers, and the two phases' steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The sizes it was planned for.
    pub sizes: TransformerSizes,
    /// Element type of the weights and activations.
    pub elem: Elem,
    /// Element type of the class ids.
    pub ids: Elem,
    /// Every buffer.
    pub buffers: Vec<Buffer>,
    /// Steps run once per generation.
    pub prologue: Vec<Step>,
    /// Steps of every forward.
    pub forward: Vec<Step>,
    /// Bytes of the constants arena.
    pub constants_bytes: usize,
    /// Bytes of the workspace arena.
    pub workspace_bytes: usize,
}

impl Plan {
    /// Plans the forward of `sizes` with weights and activations in `elem` and class ids in
    /// `ids`, and allocates its buffers.
    pub fn new(sizes: &TransformerSizes, elem: Elem, ids: Elem) -> Result<Self, super::EngineError> {
        build::build(sizes, elem, ids)
    }

    /// The prologue's steps, then the forward's: indices into this are the buffers' lifetimes.
    pub fn timeline(&self) -> impl Iterator<Item = &Step> {
        self.prologue.iter().chain(&self.forward)
    }

    /// The buffer `id`.
    pub fn buffer(&self, id: BufferId) -> &Buffer {
        &self.buffers[id.0]
    }

    /// The one buffer of `role` (`Text`, `Ids`, `Timesteps` or `Output`).
    pub fn buffer_of(&self, role: Role) -> BufferId {
        let found: Vec<usize> = (0..self.buffers.len()).filter(|&i| self.buffers[i].role == role).collect();
        assert_eq!(found.len(), 1, "the plan has {} buffers of role {role:?}", found.len());
        BufferId(found[0])
    }

    /// Floating-point operations of one forward's matrix products.
    pub fn forward_flops(&self) -> f64 {
        self.forward.iter().map(|s| if let Op::Gemm(g) = &s.op { g.flops() } else { 0.0 }).sum()
    }
}

impl Op {
    /// The buffers it touches and how, reads first.
    pub fn buffers(&self) -> Vec<(BufferId, Access)> {
        let read = |o: &Operand| match *o {
            Operand::Buffer { buffer, .. } => Some((buffer, Access::Read)),
            Operand::Weight(_) => None,
        };
        match self {
            Op::Gemm(g) => {
                let out = if g.beta != 0.0 { Access::ReadWrite } else { Access::Write };
                read(&g.a.operand).into_iter().chain(read(&g.b.operand)).chain([(g.d.buffer, out)]).collect()
            }
            Op::Kernel(k) => match *k {
                Kernel::Positions { out, .. } => vec![(out, Access::Write)],
                Kernel::Silu { ref input, out, .. } => read(input).into_iter().chain([(out, Access::Write)]).collect(),
                Kernel::Embed { ids, positions, out, .. } => {
                    vec![(ids, Access::Read), (positions, Access::Read), (out, Access::Write)]
                }
                Kernel::AdaLayerNorm { x, table, timesteps, out, .. } => {
                    vec![(x, Access::Read), (table, Access::Read), (timesteps, Access::Read), (out, Access::Write)]
                }
                Kernel::LayerNorm { x, out, .. } => vec![(x, Access::Read), (out, Access::Write)],
                Kernel::Softmax { scores, .. } => vec![(scores, Access::ReadWrite)],
                Kernel::Activation { input, out, .. } if input == out => vec![(out, Access::ReadWrite)],
                Kernel::Activation { input, out, .. } => vec![(input, Access::Read), (out, Access::Write)],
                Kernel::ClassLogSoftmax { logits, out, .. } => vec![(logits, Access::Read), (out, Access::Write)],
            },
        }
    }
}
