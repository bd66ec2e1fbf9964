//! A CPU executor of a [`Plan`]: the same buffers at the same byte offsets in two arenas, the
//! same products and kernels, with f32 arithmetic and every store rounded to the buffer's
//! element type, as the CUDA kernels do. It is slow (products through the `gemm` crate on one
//! thread, plain loops); it exists to hold the plan against the model's tensor ops in tests. The
//! workspace is filled with NaN before every forward, so that a step reading memory no step of
//! that forward wrote (a wrong offset, a buffer reused too early) shows up in the output.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use half::{bf16, f16};

use super::description::{Activation, TransformerDescription, WeightId};
use super::plan::{Arena, BufferId, Elem, Gemm, Kernel, Matrix, Op, Operand, Plan, Role, Step};
use super::{EngineError, StepTime, TransformerEngine};

/// Runs a [`Plan`] on the CPU (see the module documentation).
#[derive(Debug)]
pub struct HostExecutor {
    plan: Plan,
    /// Each weight's values, rounded to the plan's element type.
    weights: BTreeMap<WeightId, Vec<f32>>,
    constants: Vec<u8>,
    workspace: Vec<u8>,
}

/// Rounds `x` to `elem` (a float type) and back.
fn round(x: f32, elem: Elem) -> f32 {
    match elem {
        Elem::F16 => f16::from_f32(x).to_f32(),
        Elem::BF16 => bf16::from_f32(x).to_f32(),
        _ => x,
    }
}

impl HostExecutor {
    /// Checks `plan` against `weights` (row-major values by name), stores the weights in the
    /// plan's element type, writes `text` (`[batch, l, text_dim]` row-major) and runs the
    /// prologue.
    pub fn new(plan: Plan, weights: BTreeMap<WeightId, Vec<f32>>, text: &[f32]) -> Result<Self, EngineError> {
        plan.check(&plan.sizes.expected_weights())?;
        Self::unchecked(plan, weights, text)
    }

    /// [`new`](Self::new) without the plan's checks (tests of what the checks prevent).
    pub(super) fn unchecked(
        plan: Plan,
        weights: BTreeMap<WeightId, Vec<f32>>,
        text: &[f32],
    ) -> Result<Self, EngineError> {
        for (id, shape) in &plan.sizes.expected_weights() {
            let len = weights.get(id).map(Vec::len);
            if len != Some(shape.iter().product()) {
                return Err(EngineError::Description(format!("weight {id}: {len:?} values for shape {shape:?}")));
            }
        }
        let elem = plan.elem;
        let weights = weights
            .into_iter()
            .map(|(id, values)| (id, values.into_iter().map(|x| round(x, elem)).collect()))
            .collect();
        let mut executor = Self {
            constants: vec![0xFF; plan.constants_bytes],
            workspace: vec![0xFF; plan.workspace_bytes],
            weights,
            plan,
        };
        let text_buffer = executor.plan.buffer_of(Role::Text);
        if text.len() != executor.plan.buffer(text_buffer).len {
            return Err(EngineError::Description(format!(
                "{} text values for a [batch, l, text_dim] of {}",
                text.len(),
                executor.plan.buffer(text_buffer).len
            )));
        }
        executor.write(text_buffer, 0, text);
        let prologue = executor.plan.prologue.clone();
        for step in &prologue {
            executor.run(step);
        }
        Ok(executor)
    }

    /// The plan it follows.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// One forward: `ids` `[batch, n]`, one timestep per sample; returns log p(x₀ | x_t)
    /// `[batch, K, n]` row-major.
    ///
    /// # Panics
    ///
    /// On a wrong number of ids or timesteps, or a timestep outside the table. An id outside
    /// `0..=K` gives its pixel NaN log-probabilities.
    pub fn forward(&mut self, ids: &[i64], timesteps: &[usize]) -> Vec<f32> {
        let sizes = &self.plan.sizes;
        assert_eq!(ids.len(), sizes.batch * sizes.pixels(), "class ids for [batch, n]");
        assert_eq!(timesteps.len(), sizes.batch, "one timestep per sample");
        if let Some(t) = timesteps.iter().find(|&&t| t >= sizes.timesteps) {
            panic!("timestep {t} outside the table of {}", sizes.timesteps);
        }
        self.workspace.fill(0xFF);
        let ids_buffer = self.plan.buffer_of(Role::Ids);
        let at = self.plan.buffer(ids_buffer).offset;
        let width = self.plan.ids.size();
        for (i, &id) in ids.iter().enumerate() {
            let bytes = id.to_le_bytes();
            self.workspace[at + i * width..at + (i + 1) * width].copy_from_slice(&bytes[..width]);
        }
        let ts_buffer = self.plan.buffer_of(Role::Timesteps);
        let at = self.plan.buffer(ts_buffer).offset;
        for (i, &t) in timesteps.iter().enumerate() {
            self.workspace[at + 4 * i..at + 4 * i + 4].copy_from_slice(&(t as i32).to_le_bytes());
        }
        let forward = std::mem::take(&mut self.plan.forward);
        for step in &forward {
            self.run(step);
        }
        self.plan.forward = forward;
        let out = self.plan.buffer_of(Role::Output);
        self.read(out, 0, self.plan.buffer(out).len)
    }

    /// Every forward step timed alone, median of `repeats`, after the forward that ran last
    /// (its inputs stay in the workspace); see [`TransformerEngine::profile`].
    pub fn profile(&mut self, repeats: usize) -> Vec<StepTime> {
        let forward = std::mem::take(&mut self.plan.forward);
        let times = forward
            .iter()
            .map(|step| {
                let mut seconds: Vec<f64> = (0..repeats.max(1))
                    .map(|_| {
                        let start = Instant::now();
                        self.run(step);
                        start.elapsed().as_secs_f64()
                    })
                    .collect();
                seconds.sort_by(f64::total_cmp);
                let flops = if let Op::Gemm(g) = &step.op { g.flops() } else { 0.0 };
                StepTime { label: step.label.clone(), flops, seconds: seconds[seconds.len() / 2] }
            })
            .collect();
        self.plan.forward = forward;
        times
    }

    fn bytes(&self, buffer: BufferId) -> (&[u8], usize) {
        let b = self.plan.buffer(buffer);
        let arena = match b.arena {
            Arena::Constants => &self.constants,
            Arena::Workspace => &self.workspace,
        };
        (arena, b.offset)
    }

    /// `len` values of a float buffer from element `start`, as f32.
    fn read(&self, buffer: BufferId, start: usize, len: usize) -> Vec<f32> {
        let elem = self.plan.buffer(buffer).elem;
        let (arena, offset) = self.bytes(buffer);
        let size = elem.size();
        let bytes = &arena[offset + start * size..offset + (start + len) * size];
        match elem {
            Elem::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
            Elem::F16 => bytes.chunks_exact(2).map(|b| f16::from_le_bytes(b.try_into().unwrap()).to_f32()).collect(),
            Elem::BF16 => bytes.chunks_exact(2).map(|b| bf16::from_le_bytes(b.try_into().unwrap()).to_f32()).collect(),
            Elem::I32 | Elem::I64 => panic!("float read of an integer buffer"),
        }
    }

    /// `len` values of an integer buffer.
    fn read_ints(&self, buffer: BufferId, len: usize) -> Vec<i64> {
        let elem = self.plan.buffer(buffer).elem;
        let (arena, offset) = self.bytes(buffer);
        let bytes = &arena[offset..offset + len * elem.size()];
        match elem {
            Elem::I32 => bytes.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64).collect(),
            Elem::I64 => bytes.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect(),
            _ => panic!("integer read of a float buffer"),
        }
    }

    /// Stores `values` into a float buffer from element `start`, rounded to its type.
    fn write(&mut self, buffer: BufferId, start: usize, values: &[f32]) {
        let b = self.plan.buffer(buffer);
        let (elem, offset) = (b.elem, b.offset);
        let arena = match b.arena {
            Arena::Constants => &mut self.constants,
            Arena::Workspace => &mut self.workspace,
        };
        let size = elem.size();
        let bytes = &mut arena[offset + start * size..offset + (start + values.len()) * size];
        for (chunk, &x) in bytes.chunks_exact_mut(size).zip(values) {
            match elem {
                Elem::F32 => chunk.copy_from_slice(&x.to_le_bytes()),
                Elem::F16 => chunk.copy_from_slice(&f16::from_f32(x).to_le_bytes()),
                Elem::BF16 => chunk.copy_from_slice(&bf16::from_f32(x).to_le_bytes()),
                Elem::I32 | Elem::I64 => panic!("float write into an integer buffer"),
            }
        }
    }

    /// `len` values of an operand from its first element.
    fn operand(&self, operand: Operand, len: usize) -> Vec<f32> {
        match operand {
            Operand::Buffer { buffer, offset } => self.read(buffer, offset, len),
            Operand::Weight(id) => self.weights[&id][..len].to_vec(),
        }
    }

    fn weight(&self, id: WeightId) -> &[f32] {
        &self.weights[&id]
    }

    fn run(&mut self, step: &Step) {
        match &step.op {
            Op::Gemm(g) => self.gemm(g),
            Op::Kernel(k) => self.kernel(k),
        }
    }

    fn gemm(&mut self, g: &Gemm) {
        // Each operand from its first element to the last one the product touches.
        let extent = |m: &Matrix, (rows, cols): (usize, usize)| (g.batch - 1) * m.stride + (cols - 1) * m.ld + rows;
        let a = self.operand(g.a.operand, extent(&g.a, g.a_stored()));
        let b = self.operand(g.b.operand, extent(&g.b, g.b_stored()));
        let d_len = (g.batch - 1) * g.d.stride + (g.n - 1) * g.d.ld + g.m;
        let mut d = self.read(g.d.buffer, g.d.offset, d_len);
        let bias = g.bias.map(|id| self.weight(id).to_vec());
        // op(X)'s element (i, j) is X[i + j·ld], or X[j + i·ld] transposed: (row, column) strides.
        let strides = |m: &Matrix| if m.transpose { (m.ld as isize, 1) } else { (1, m.ld as isize) };
        let ((a_rs, a_cs), (b_rs, b_cs)) = (strides(&g.a), strides(&g.b));
        let mut product = vec![0.0f32; g.m * g.n];
        for batch in 0..g.batch {
            // SAFETY: `a`, `b` hold every element the strides reach for this batch index (the
            // extents above), `product` is a dense column-major m × n matrix.
            unsafe {
                // product = alpha · op(A) · op(B)   (gemm computes dst = alpha·dst + beta·lhs·rhs)
                gemm::gemm(
                    g.m,
                    g.n,
                    g.k,
                    product.as_mut_ptr(),
                    g.m as isize,
                    1,
                    false,
                    a.as_ptr().add(batch * g.a.stride),
                    a_cs,
                    a_rs,
                    b.as_ptr().add(batch * g.b.stride),
                    b_cs,
                    b_rs,
                    0.0,
                    g.alpha,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            for j in 0..g.n {
                for i in 0..g.m {
                    let at = batch * g.d.stride + j * g.d.ld + i;
                    let mut x = product[i + j * g.m];
                    if g.beta != 0.0 {
                        x += g.beta * d[at];
                    }
                    if let Some(bias) = &bias {
                        x += bias[i];
                    }
                    d[at] = x;
                }
            }
        }
        // Elements between the matrices' columns are not D's: write back only D's own.
        for batch in 0..g.batch {
            for j in 0..g.n {
                let at = batch * g.d.stride + j * g.d.ld;
                let column: Vec<f32> = d[at..at + g.m].to_vec();
                self.write(g.d.buffer, g.d.offset + at, &column);
            }
        }
    }

    fn kernel(&mut self, kernel: &Kernel) {
        match *kernel {
            Kernel::Positions { height, width, out, grid_width, pixels, dim } => {
                let (h, w) = (self.weight(height), self.weight(width));
                let values: Vec<f32> = (0..pixels * dim)
                    .map(|e| {
                        let (p, j) = (e / dim, e % dim);
                        h[(p / grid_width) * dim + j] + w[(p % grid_width) * dim + j]
                    })
                    .collect();
                self.write(out, 0, &values);
            }
            Kernel::Silu { input, out, rows, dim } => {
                let values: Vec<f32> = self.operand(input, rows * dim).into_iter().map(silu).collect();
                self.write(out, 0, &values);
            }
            Kernel::Embed { ids, classes, positions, out, rows, pixels, dim } => {
                let ids = self.read_ints(ids, rows);
                let positions = self.read(positions, 0, pixels * dim);
                let table = self.weight(classes);
                let classes = table.len() / dim;
                let mut values = Vec::with_capacity(rows * dim);
                for (r, &id) in ids.iter().enumerate() {
                    let p = r % pixels;
                    match usize::try_from(id).ok().filter(|&id| id < classes) {
                        Some(id) => values.extend((0..dim).map(|j| table[id * dim + j] + positions[p * dim + j])),
                        // As the CUDA kernel: no read outside the table, NaN for the row.
                        None => values.extend(std::iter::repeat_n(f32::NAN, dim)),
                    }
                }
                self.write(out, 0, &values);
            }
            Kernel::AdaLayerNorm { x, table, timesteps, out, rows, pixels, dim, eps } => {
                let x = self.read(x, 0, rows * dim);
                let table = self.read(table, 0, self.plan.sizes.timesteps * 2 * dim);
                let ts = self.read_ints(timesteps, rows.div_ceil(pixels));
                let mut values = Vec::with_capacity(rows * dim);
                for (r, row) in x.chunks_exact(dim).enumerate() {
                    let t = ts[r / pixels] as usize;
                    let (scale, shift) = table[t * 2 * dim..(t + 1) * 2 * dim].split_at(dim);
                    let (mean, inv) = moments(row, eps);
                    values.extend(row.iter().enumerate().map(|(j, &v)| (v - mean) * inv * (1.0 + scale[j]) + shift[j]));
                }
                self.write(out, 0, &values);
            }
            Kernel::LayerNorm { x, gamma, beta, out, rows, dim, eps } => {
                let x = self.read(x, 0, rows * dim);
                let (gamma, beta) = (self.weight(gamma), self.weight(beta));
                let mut values = Vec::with_capacity(rows * dim);
                for row in x.chunks_exact(dim) {
                    let (mean, inv) = moments(row, eps);
                    values.extend(row.iter().enumerate().map(|(j, &v)| (v - mean) * inv * gamma[j] + beta[j]));
                }
                self.write(out, 0, &values);
            }
            Kernel::Softmax { scores, rows, cols, ld } => {
                for r in 0..rows {
                    let row = self.read(scores, r * ld, cols);
                    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let exps: Vec<f32> = row.iter().map(|&x| (x - max).exp()).collect();
                    let inv = 1.0 / exps.iter().sum::<f32>();
                    let values: Vec<f32> = exps.iter().map(|&e| e * inv).collect();
                    self.write(scores, r * ld, &values);
                }
            }
            Kernel::Activation { kind, input, out, rows, width } => {
                let input_width = if kind.is_gated() { 2 * width } else { width };
                let x = self.read(input, 0, rows * input_width);
                let mut values = Vec::with_capacity(rows * width);
                for row in x.chunks_exact(input_width) {
                    match kind {
                        Activation::Geglu => values.extend((0..width).map(|j| row[j] * gelu(row[width + j]))),
                        Activation::Swiglu => values.extend((0..width).map(|j| row[j] * silu(row[width + j]))),
                        Activation::Gelu => values.extend(row.iter().map(|&v| gelu(v))),
                        Activation::GeluTanh => values.extend(row.iter().map(|&v| gelu_tanh(v))),
                        Activation::QuickGelu => values.extend(row.iter().map(|&v| v / (1.0 + (-1.702 * v).exp()))),
                        Activation::Silu => values.extend(row.iter().map(|&v| silu(v))),
                    }
                }
                self.write(out, 0, &values);
            }
            Kernel::ClassLogSoftmax { logits, bias, out, batch, classes, pixels } => {
                let columns = batch * pixels;
                let logits = self.read(logits, 0, classes * columns);
                let bias = self.weight(bias);
                let mut values = vec![0.0f32; batch * classes * pixels];
                for column in 0..columns {
                    let (b, p) = (column / pixels, column % pixels);
                    let x = |c: usize| logits[c * columns + column] + bias[c];
                    let max = (0..classes).map(x).fold(f32::NEG_INFINITY, f32::max);
                    let sum: f32 = (0..classes).map(|c| (x(c) - max).exp()).sum();
                    let log_sum = sum.ln();
                    for c in 0..classes {
                        values[(b * classes + c) * pixels + p] = x(c) - max - log_sum;
                    }
                }
                self.write(out, 0, &values);
            }
        }
    }
}

/// Mean and 1/√(biased variance + eps) of a row.
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

fn gelu(x: f32) -> f32 {
    (0.5 * x as f64 * (1.0 + libm::erf(x as f64 / std::f64::consts::SQRT_2))) as f32
}

fn gelu_tanh(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())) as f32
}

/// A [`HostExecutor`] behind the [`TransformerEngine`] interface of any backend: reads the
/// ids from the device, runs the plan on the CPU, uploads the result. For tests of an engine
/// path on machines without the engine's device.
pub struct HostEngine<B: Backend> {
    executor: Mutex<HostExecutor>,
    device: B::Device,
}

impl<B: Backend> HostEngine<B> {
    /// Plans `description` in `elem` (any float type, whatever the tensors' dtype) and runs its
    /// prologue on the CPU.
    pub fn new(description: &TransformerDescription<B>, elem: Elem) -> Result<Self, EngineError> {
        description.validate()?;
        let plan = Plan::new(&description.sizes, elem, Elem::I64)?;
        let weights = description.weights.iter().map(|(id, t)| (*id, t.to_f32_vec())).collect();
        let text = description.text.to_data().convert::<f32>().to_vec::<f32>().expect("f32 text");
        let executor = HostExecutor::new(plan, weights, &text)?;
        Ok(Self { executor: Mutex::new(executor), device: description.text.device() })
    }
}

impl<B: Backend> TransformerEngine<B> for HostEngine<B> {
    fn forward(&self, latents: Tensor<B, 2, Int>, timesteps: &[usize]) -> Tensor<B, 3> {
        let ids = latents.into_data().convert::<i64>().to_vec::<i64>().expect("i64 ids");
        let mut executor = self.executor.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let out = executor.forward(&ids, timesteps);
        let s = &executor.plan().sizes;
        Tensor::from_data(TensorData::new(out, [s.batch, s.classes, s.pixels()]), &self.device)
    }

    fn describe(&self) -> String {
        let executor = self.executor.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        format!("host plan executor ({})", executor.plan().elem.name())
    }

    fn profile(&self, repeats: usize) -> Option<Vec<StepTime>> {
        let mut executor = self.executor.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Some(executor.profile(repeats))
    }
}
