//! Checks of a plan that need no executor: every weight of the model used exactly once with
//! the shape the model has, every access inside its buffer and of the buffer's element type,
//! and no two buffers live at the same time sharing memory.

use std::collections::BTreeMap;

use super::memory::overlap;
use super::{Arena, BufferId, Elem, Kernel, Op, Operand, Plan, Role, BUFFER_ALIGN};
use crate::engine::description::WeightId;
use crate::engine::EngineError;

fn fail<T>(message: String) -> Result<T, EngineError> {
    Err(EngineError::Plan(message))
}

impl Plan {
    /// Every check: [`check_weights`](Self::check_weights) against `weights` (the model's
    /// weights and shapes, e.g. [`TransformerSizes::expected_weights`]), then
    /// [`check_accesses`](Self::check_accesses) and [`check_memory`](Self::check_memory).
    ///
    /// [`TransformerSizes::expected_weights`]: crate::engine::TransformerSizes::expected_weights
    pub fn check(&self, weights: &[(WeightId, Vec<usize>)]) -> Result<(), EngineError> {
        self.check_weights(weights)?;
        self.check_accesses()?;
        self.check_memory()
    }

    /// Each weight the steps read, with the shape the step reads it as (burn's layout: linear
    /// weights `[in, out]`), and the step's label.
    pub fn weight_uses(&self) -> Vec<(WeightId, Vec<usize>, &str)> {
        let mut uses = Vec::new();
        for step in self.timeline() {
            let mut add = |id: WeightId, shape: Vec<usize>| uses.push((id, shape, step.label.as_str()));
            match &step.op {
                Op::Gemm(g) => {
                    for (matrix, (rows, cols)) in [(&g.a, g.a_stored()), (&g.b, g.b_stored())] {
                        if let Operand::Weight(id) = matrix.operand {
                            // A column-major rows × cols matrix with ld = rows is burn's [cols, rows].
                            let dense = matrix.ld == rows && (g.batch == 1 || matrix.stride == 0);
                            add(id, if dense { vec![cols, rows] } else { vec![usize::MAX] });
                        }
                    }
                    if let Some(bias) = g.bias {
                        add(bias, vec![g.m]);
                    }
                }
                Op::Kernel(k) => match *k {
                    Kernel::Positions { height, width, grid_width, pixels, dim, .. } => {
                        add(height, vec![pixels.div_ceil(grid_width), dim]);
                        add(width, vec![grid_width, dim]);
                    }
                    Kernel::Silu { input: Operand::Weight(id), rows, dim, .. } => add(id, vec![rows, dim]),
                    Kernel::Embed { classes, dim, .. } => add(classes, vec![self.sizes.classes + 1, dim]),
                    Kernel::LayerNorm { gamma, beta, dim, .. } => {
                        add(gamma, vec![dim]);
                        add(beta, vec![dim]);
                    }
                    Kernel::ClassLogSoftmax { bias, classes, .. } => add(bias, vec![classes]),
                    _ => {}
                },
            }
        }
        uses
    }

    /// Every weight of `weights` is read exactly once, as a tensor of its shape, and nothing else.
    pub fn check_weights(&self, weights: &[(WeightId, Vec<usize>)]) -> Result<(), EngineError> {
        let expected: BTreeMap<WeightId, &Vec<usize>> = weights.iter().map(|(id, shape)| (*id, shape)).collect();
        let mut seen: BTreeMap<WeightId, &str> = BTreeMap::new();
        for (id, shape, label) in self.weight_uses() {
            let Some(&want) = expected.get(&id) else {
                return fail(format!("{label} reads weight {id}, which the model does not have"));
            };
            if &shape != want {
                return fail(format!("{label} reads weight {id} as {shape:?}; it is {want:?}"));
            }
            if let Some(before) = seen.insert(id, label) {
                return fail(format!("weight {id} is read twice: by {before} and by {label}"));
            }
        }
        if let Some((id, _)) = expected.iter().find(|(id, _)| !seen.contains_key(id)) {
            return fail(format!("no step reads weight {id}"));
        }
        Ok(())
    }

    /// Every access of every step lies inside its buffer, with the buffer's element type.
    pub fn check_accesses(&self) -> Result<(), EngineError> {
        for step in self.timeline() {
            let check = |buffer: BufferId, offset: usize, last: usize, elem: Elem, what: &str| {
                let b = self.buffer(buffer);
                if b.elem != elem {
                    return fail(format!(
                        "{}: {what} `{}` is {}, expected {}",
                        step.label,
                        b.name,
                        b.elem.name(),
                        elem.name()
                    ));
                }
                if offset + last >= b.len {
                    return fail(format!(
                        "{}: {what} reads or writes element {} of `{}`, which has {}",
                        step.label,
                        offset + last,
                        b.name,
                        b.len
                    ));
                }
                Ok(())
            };
            let e = self.elem;
            match &step.op {
                Op::Gemm(g) => {
                    for (matrix, stored, what) in [(&g.a, g.a_stored(), "A"), (&g.b, g.b_stored(), "B")] {
                        if matrix.ld < stored.0 {
                            return fail(format!("{}: {what} has ld {} < {} rows", step.label, matrix.ld, stored.0));
                        }
                        if let Operand::Buffer { buffer, offset } = matrix.operand {
                            check(buffer, offset, extent(g.batch, matrix.stride, matrix.ld, stored), e, what)?;
                        }
                    }
                    if g.d.ld < g.m {
                        return fail(format!("{}: D has ld {} < {} rows", step.label, g.d.ld, g.m));
                    }
                    check(g.d.buffer, g.d.offset, extent(g.batch, g.d.stride, g.d.ld, (g.m, g.n)), e, "D")?;
                    for (matrix, what) in [(&g.a, "A"), (&g.b, "B")] {
                        if let Operand::Buffer { buffer, .. } = matrix.operand {
                            if buffer == g.d.buffer {
                                return fail(format!("{}: {what} and D are the same buffer", step.label));
                            }
                        }
                    }
                }
                Op::Kernel(k) => match *k {
                    Kernel::Positions { out, pixels, dim, .. } => check(out, 0, pixels * dim - 1, e, "out")?,
                    Kernel::Silu { input, out, rows, dim } => {
                        if let Operand::Buffer { buffer, offset } = input {
                            check(buffer, offset, rows * dim - 1, e, "input")?;
                        }
                        check(out, 0, rows * dim - 1, e, "out")?;
                    }
                    Kernel::Embed { ids, positions, out, rows, pixels, dim, .. } => {
                        check(ids, 0, rows - 1, self.ids, "ids")?;
                        check(positions, 0, pixels * dim - 1, e, "positions")?;
                        check(out, 0, rows * dim - 1, e, "out")?;
                        if rows % pixels != 0 {
                            return fail(format!("{}: {rows} rows are no whole samples of {pixels}", step.label));
                        }
                    }
                    Kernel::AdaLayerNorm { x, table, timesteps, out, rows, pixels, dim, .. } => {
                        check(x, 0, rows * dim - 1, e, "x")?;
                        check(table, 0, self.sizes.timesteps * 2 * dim - 1, e, "table")?;
                        check(timesteps, 0, rows.div_ceil(pixels) - 1, Elem::I32, "timesteps")?;
                        check(out, 0, rows * dim - 1, e, "out")?;
                    }
                    Kernel::LayerNorm { x, out, rows, dim, .. } => {
                        check(x, 0, rows * dim - 1, e, "x")?;
                        check(out, 0, rows * dim - 1, e, "out")?;
                    }
                    Kernel::Softmax { scores, rows, cols, ld } => {
                        if cols > ld {
                            return fail(format!("{}: rows of {cols} elements {ld} apart", step.label));
                        }
                        check(scores, 0, (rows - 1) * ld + cols - 1, e, "scores")?;
                    }
                    Kernel::Activation { kind, input, out, rows, width } => {
                        let input_width = if kind.is_gated() { 2 * width } else { width };
                        if kind.is_gated() && input == out {
                            return fail(format!("{}: a gated activation cannot run in place", step.label));
                        }
                        check(input, 0, rows * input_width - 1, e, "input")?;
                        check(out, 0, rows * width - 1, e, "out")?;
                    }
                    Kernel::ClassLogSoftmax { logits, out, batch, classes, pixels, .. } => {
                        check(logits, 0, classes * batch * pixels - 1, e, "logits")?;
                        check(out, 0, batch * classes * pixels - 1, Elem::F32, "out")?;
                    }
                },
            }
        }
        Ok(())
    }

    /// Buffers are aligned, inside their arena, and two buffers whose lifetimes overlap share no
    /// byte; inputs and the output have the element types the executors write and read.
    pub fn check_memory(&self) -> Result<(), EngineError> {
        for b in &self.buffers {
            let size = match b.arena {
                Arena::Constants => self.constants_bytes,
                Arena::Workspace => self.workspace_bytes,
            };
            if b.offset % BUFFER_ALIGN != 0 || b.range().end > size {
                return fail(format!(
                    "buffer `{}` at {:?} is misaligned or outside its arena of {size} bytes",
                    b.name,
                    b.range()
                ));
            }
            let elem = match b.role {
                Role::Ids => self.ids,
                Role::Timesteps => Elem::I32,
                Role::Output => Elem::F32,
                _ => self.elem,
            };
            if b.elem != elem {
                return fail(format!("buffer `{}` is {}, its role needs {}", b.name, b.elem.name(), elem.name()));
            }
        }
        for (i, a) in self.buffers.iter().enumerate() {
            for b in &self.buffers[i + 1..] {
                let shared = a.range().start < b.range().end && b.range().start < a.range().end;
                if a.arena == b.arena && shared && overlap(a.lifetime, b.lifetime) {
                    return fail(format!(
                        "buffers `{}` (steps {:?}, bytes {:?}) and `{}` (steps {:?}, bytes {:?}) are live together in the same memory",
                        a.name,
                        a.lifetime,
                        a.range(),
                        b.name,
                        b.lifetime,
                        b.range()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The last element (from the matrix's first) that `batch` column-major `rows × cols` matrices
/// `stride` apart with leading dimension `ld` touch.
fn extent(batch: usize, stride: usize, ld: usize, (rows, cols): (usize, usize)) -> usize {
    (batch - 1) * stride + (cols - 1) * ld + rows - 1
}
