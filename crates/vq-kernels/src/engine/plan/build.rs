//! Building the steps of a plan from the model's sizes (see the conventions in the parent
//! module).

use super::memory::allocate;
use super::{Arena, Buffer, BufferId, Elem, Gemm, Kernel, Matrix, Op, Operand, Output, Plan, Role, Step};
use crate::engine::description::{Layer, Param, TransformerSizes, WeightId};
use crate::engine::EngineError;

/// Rows of attention scores are padded to a multiple of this many elements.
const SCORE_ROW_MULTIPLE: usize = 8;

/// Which phase a step belongs to.
#[derive(Clone, Copy)]
enum Phase {
    Prologue,
    Forward,
}

/// A place in a buffer: (buffer, first element).
type At = (BufferId, usize);

struct Builder<'a> {
    sizes: &'a TransformerSizes,
    elem: Elem,
    buffers: Vec<Buffer>,
    prologue: Vec<Step>,
    forward: Vec<Step>,
}

impl Builder<'_> {
    fn buffer(&mut self, name: String, role: Role, elem: Elem, len: usize) -> BufferId {
        let arena = if role == Role::Constant { Arena::Constants } else { Arena::Workspace };
        self.buffers.push(Buffer { name, role, elem, len, arena, offset: 0, lifetime: (0, 0) });
        BufferId(self.buffers.len() - 1)
    }

    /// A buffer of the activations' element type.
    fn activation(&mut self, name: String, role: Role, len: usize) -> BufferId {
        self.buffer(name, role, self.elem, len)
    }

    fn step(&mut self, phase: Phase, label: String, op: Op) {
        let step = Step { label, op };
        match phase {
            Phase::Prologue => self.prologue.push(step),
            Phase::Forward => self.forward.push(step),
        }
    }

    fn kernel(&mut self, phase: Phase, label: String, kernel: Kernel) {
        self.step(phase, label, Op::Kernel(kernel));
    }

    /// `out[rows, out_dim] (β = 0: =, β = 1: +=) x[rows, in_dim] · W + bias`, burn's `Linear`
    /// on row-major activations (see the conventions).
    #[allow(clippy::too_many_arguments)]
    fn linear(
        &mut self,
        phase: Phase,
        label: String,
        x: At,
        rows: usize,
        in_dim: usize,
        weight: WeightId,
        bias: Option<WeightId>,
        out: At,
        out_dim: usize,
        beta: f32,
    ) {
        let gemm = Gemm {
            m: out_dim,
            n: rows,
            k: in_dim,
            batch: 1,
            a: Matrix { operand: Operand::Weight(weight), transpose: false, ld: out_dim, stride: 0 },
            b: Matrix {
                operand: Operand::Buffer { buffer: x.0, offset: x.1 },
                transpose: false,
                ld: in_dim,
                stride: 0,
            },
            d: Output { buffer: out.0, offset: out.1, ld: out_dim, stride: 0 },
            alpha: 1.0,
            beta,
            bias,
        };
        self.step(phase, label, Op::Gemm(gemm));
    }

    /// Attention of `heads` heads for every sample: scores of queries `q` against keys `k`
    /// (`keys` of them per sample), softmax, times values `v`, into `out`. q, k, v and out are
    /// `[batch, len, D]` row-major.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &mut self,
        label: &str,
        q: BufferId,
        k: BufferId,
        v: BufferId,
        keys: usize,
        scores: BufferId,
        out: BufferId,
    ) {
        let s = self.sizes;
        let (d, n, heads, head_dim) = (s.dim(), s.pixels(), s.heads, s.head_dim);
        let ld = keys.next_multiple_of(SCORE_ROW_MULTIPLE);
        for b in 0..s.batch {
            let scores_at = b * heads * n * ld;
            // Scoresᵀ of head h (keys × n, column-major = row-major [n, keys]) = K_hᵀ · Q_h.
            let gemm = Gemm {
                m: keys,
                n,
                k: head_dim,
                batch: heads,
                a: Matrix {
                    operand: Operand::Buffer { buffer: k, offset: b * keys * d },
                    transpose: true,
                    ld: d,
                    stride: head_dim,
                },
                b: Matrix {
                    operand: Operand::Buffer { buffer: q, offset: b * n * d },
                    transpose: false,
                    ld: d,
                    stride: head_dim,
                },
                d: Output { buffer: scores, offset: scores_at, ld, stride: n * ld },
                alpha: 1.0 / (head_dim as f32).sqrt(),
                beta: 0.0,
                bias: None,
            };
            self.step(Phase::Forward, format!("{label} scores (sample {b})"), Op::Gemm(gemm));
        }
        let rows = s.batch * heads * n;
        self.kernel(Phase::Forward, format!("{label} softmax"), Kernel::Softmax { scores, rows, cols: keys, ld });
        for b in 0..s.batch {
            // Outᵀ of head h (head_dim × n) = V_h (head_dim × keys) · Pᵀ (keys × n).
            let gemm = Gemm {
                m: head_dim,
                n,
                k: keys,
                batch: heads,
                a: Matrix {
                    operand: Operand::Buffer { buffer: v, offset: b * keys * d },
                    transpose: false,
                    ld: d,
                    stride: head_dim,
                },
                b: Matrix {
                    operand: Operand::Buffer { buffer: scores, offset: b * heads * n * ld },
                    transpose: false,
                    ld,
                    stride: n * ld,
                },
                d: Output { buffer: out, offset: b * n * d, ld: d, stride: head_dim },
                alpha: 1.0,
                beta: 0.0,
                bias: None,
            };
            self.step(Phase::Forward, format!("{label} values (sample {b})"), Op::Gemm(gemm));
        }
    }
}

pub(super) fn build(sizes: &TransformerSizes, elem: Elem, ids: Elem) -> Result<Plan, EngineError> {
    sizes.validate()?;
    if !elem.is_float() {
        return Err(EngineError::Description(format!("activations in {}: a float type is needed", elem.name())));
    }
    if !matches!(ids, Elem::I32 | Elem::I64) {
        return Err(EngineError::Description(format!("class ids in {}: i32 or i64 is needed", ids.name())));
    }
    let mut p = Builder { sizes, elem, buffers: Vec::new(), prologue: Vec::new(), forward: Vec::new() };
    let s = sizes;
    let (batch, n, d, l, t) = (s.batch, s.pixels(), s.dim(), s.text_len, s.timesteps);
    let rows = batch * n;
    let block_weight = |i, layer, param| WeightId::block(i, layer, param);
    let bias = |i, layer| Some(WeightId::block(i, layer, Param::Bias));
    let qkv_bias = |i, layer| s.attention_bias.then(|| WeightId::block(i, layer, Param::Bias));
    let (pro, fwd) = (Phase::Prologue, Phase::Forward);

    // Prologue: positions, AdaLayerNorm tables, cross-attention keys and values.
    let text = p.activation("text".into(), Role::Text, batch * l * s.text_dim);
    let positions = p.activation("positions".into(), Role::Constant, n * d);
    p.kernel(
        pro,
        "positions".into(),
        Kernel::Positions {
            height: WeightId::top(Layer::HeightEmbedding, Param::Weight),
            width: WeightId::top(Layer::WidthEmbedding, Param::Weight),
            out: positions,
            grid_width: s.width,
            pixels: n,
            dim: d,
        },
    );
    let mut tables = Vec::with_capacity(s.layers);
    let mut cross = Vec::with_capacity(s.layers);
    for i in 0..s.layers {
        let mut pair = [BufferId(0); 2];
        for (j, (emb, linear)) in
            [(Layer::Norm1Embedding, Layer::Norm1Linear), (Layer::Norm2Embedding, Layer::Norm2Linear)]
                .into_iter()
                .enumerate()
        {
            let name = format!("block {i} norm{}", j + 1);
            let silu = p.activation(format!("{name} silu(emb)"), Role::Scratch, t * d);
            let input = Operand::Weight(block_weight(i, emb, Param::Weight));
            p.kernel(pro, format!("{name} silu(emb)"), Kernel::Silu { input, out: silu, rows: t, dim: d });
            let table = p.activation(format!("{name} scale/shift table"), Role::Constant, t * 2 * d);
            let weight = block_weight(i, linear, Param::Weight);
            p.linear(pro, format!("{name} linear"), (silu, 0), t, d, weight, bias(i, linear), (table, 0), 2 * d, 0.0);
            pair[j] = table;
        }
        tables.push(pair);
        let mut kv = [BufferId(0); 2];
        for (j, layer) in [Layer::Attn2K, Layer::Attn2V].into_iter().enumerate() {
            let name = format!("block {i} {}", layer.key());
            let out = p.activation(format!("{name} (text)"), Role::Constant, batch * l * d);
            let weight = block_weight(i, layer, Param::Weight);
            p.linear(pro, name, (text, 0), batch * l, s.text_dim, weight, qkv_bias(i, layer), (out, 0), d, 0.0);
            kv[j] = out;
        }
        cross.push(kv);
    }

    // Forward.
    let ids = p.buffer("class ids".into(), Role::Ids, ids, rows);
    let timesteps = p.buffer("timesteps".into(), Role::Timesteps, Elem::I32, batch);
    let hidden = p.activation("hidden".into(), Role::Scratch, rows * d);
    let classes = WeightId::top(Layer::ClassEmbedding, Param::Weight);
    let embed = Kernel::Embed { ids, classes, positions, out: hidden, rows, pixels: n, dim: d };
    p.kernel(fwd, "latent_image_embedding".into(), embed);
    let ada_eps = s.ada_norm_eps as f32;
    for i in 0..s.layers {
        let scratch = |p: &mut Builder, what: &str, len| p.activation(format!("block {i} {what}"), Role::Scratch, len);
        // Self-attention: hidden += to_out(attention(norm1(hidden))).
        let x = scratch(&mut p, "norm1 out", rows * d);
        let ada =
            |x, table, out| Kernel::AdaLayerNorm { x, table, timesteps, out, rows, pixels: n, dim: d, eps: ada_eps };
        p.kernel(fwd, format!("block {i} norm1"), ada(hidden, tables[i][0], x));
        let mut qkv = [BufferId(0); 3];
        for (j, layer) in [Layer::Attn1Q, Layer::Attn1K, Layer::Attn1V].into_iter().enumerate() {
            let out = scratch(&mut p, layer.key(), rows * d);
            let weight = block_weight(i, layer, Param::Weight);
            p.linear(
                fwd,
                format!("block {i} {}", layer.key()),
                (x, 0),
                rows,
                d,
                weight,
                qkv_bias(i, layer),
                (out, 0),
                d,
                0.0,
            );
            qkv[j] = out;
        }
        let ld = n.next_multiple_of(SCORE_ROW_MULTIPLE);
        let scores = scratch(&mut p, "attn1 scores", batch * s.heads * n * ld);
        let attended = scratch(&mut p, "attn1 out", rows * d);
        p.attention(&format!("block {i} attn1"), qkv[0], qkv[1], qkv[2], n, scores, attended);
        let weight = block_weight(i, Layer::Attn1Out, Param::Weight);
        let label = format!("block {i} attn1.to_out.0 + residual");
        p.linear(fwd, label, (attended, 0), rows, d, weight, bias(i, Layer::Attn1Out), (hidden, 0), d, 1.0);

        // Cross-attention over the text: hidden += to_out(attention(norm2(hidden), text)).
        let x = scratch(&mut p, "norm2 out", rows * d);
        p.kernel(fwd, format!("block {i} norm2"), ada(hidden, tables[i][1], x));
        let q = scratch(&mut p, "attn2.to_q", rows * d);
        let weight = block_weight(i, Layer::Attn2Q, Param::Weight);
        p.linear(
            fwd,
            format!("block {i} attn2.to_q"),
            (x, 0),
            rows,
            d,
            weight,
            qkv_bias(i, Layer::Attn2Q),
            (q, 0),
            d,
            0.0,
        );
        let ld = l.next_multiple_of(SCORE_ROW_MULTIPLE);
        let scores = scratch(&mut p, "attn2 scores", batch * s.heads * n * ld);
        let attended = scratch(&mut p, "attn2 out", rows * d);
        p.attention(&format!("block {i} attn2"), q, cross[i][0], cross[i][1], l, scores, attended);
        let weight = block_weight(i, Layer::Attn2Out, Param::Weight);
        let label = format!("block {i} attn2.to_out.0 + residual");
        p.linear(fwd, label, (attended, 0), rows, d, weight, bias(i, Layer::Attn2Out), (hidden, 0), d, 1.0);

        // Feed-forward: hidden += ff(norm3(hidden)).
        let x = scratch(&mut p, "norm3 out", rows * d);
        let norm3 = Kernel::LayerNorm {
            x: hidden,
            gamma: block_weight(i, Layer::Norm3, Param::Weight),
            beta: block_weight(i, Layer::Norm3, Param::Bias),
            out: x,
            rows,
            dim: d,
            eps: s.ff_norm_eps as f32,
        };
        p.kernel(fwd, format!("block {i} norm3"), norm3);
        let projected = scratch(&mut p, "ff.net.0.proj out", rows * s.ff_proj());
        let weight = block_weight(i, Layer::FfIn, Param::Weight);
        let label = format!("block {i} ff.net.0.proj");
        p.linear(fwd, label, (x, 0), rows, d, weight, bias(i, Layer::FfIn), (projected, 0), s.ff_proj(), 0.0);
        let activated =
            if s.activation.is_gated() { scratch(&mut p, "ff activation", rows * s.ff_inner) } else { projected };
        let activation =
            Kernel::Activation { kind: s.activation, input: projected, out: activated, rows, width: s.ff_inner };
        p.kernel(fwd, format!("block {i} ff activation"), activation);
        let weight = block_weight(i, Layer::FfOut, Param::Weight);
        let label = format!("block {i} ff.net.2 + residual");
        p.linear(fwd, label, (activated, 0), rows, s.ff_inner, weight, bias(i, Layer::FfOut), (hidden, 0), d, 1.0);
    }

    // Output: norm_out, the logits transposed ([K, batch·n]), the class log-softmax.
    let normed = p.activation("norm_out out".into(), Role::Scratch, rows * d);
    let norm_out = Kernel::LayerNorm {
        x: hidden,
        gamma: WeightId::top(Layer::NormOut, Param::Weight),
        beta: WeightId::top(Layer::NormOut, Param::Bias),
        out: normed,
        rows,
        dim: d,
        eps: s.norm_out_eps as f32,
    };
    p.kernel(fwd, "norm_out".into(), norm_out);
    let logits = p.activation("logits [K, batch·n]".into(), Role::Scratch, s.classes * rows);
    // Logitsᵀ... read column-major: D (rows × K, ld rows) = normedᵀ (rows × D) · Wᵀ (D × K).
    let gemm = Gemm {
        m: rows,
        n: s.classes,
        k: d,
        batch: 1,
        a: Matrix { operand: Operand::Buffer { buffer: normed, offset: 0 }, transpose: true, ld: d, stride: 0 },
        b: Matrix {
            operand: Operand::Weight(WeightId::top(Layer::Out, Param::Weight)),
            transpose: true,
            ld: s.classes,
            stride: 0,
        },
        d: Output { buffer: logits, offset: 0, ld: rows, stride: 0 },
        alpha: 1.0,
        beta: 0.0,
        bias: None,
    };
    p.step(fwd, "out (transposed)".into(), Op::Gemm(gemm));
    let out = p.buffer("log p(x0) [batch, K, n]".into(), Role::Output, Elem::F32, batch * s.classes * n);
    let log_softmax = Kernel::ClassLogSoftmax {
        logits,
        bias: WeightId::top(Layer::Out, Param::Bias),
        out,
        batch,
        classes: s.classes,
        pixels: n,
    };
    p.kernel(fwd, "class log-softmax".into(), log_softmax);

    let mut plan = Plan {
        sizes: sizes.clone(),
        elem,
        ids: p.buffers[ids.0].elem,
        buffers: p.buffers,
        prologue: p.prologue,
        forward: p.forward,
        constants_bytes: 0,
        workspace_bytes: 0,
    };
    allocate(&mut plan)?;
    Ok(plan)
}
