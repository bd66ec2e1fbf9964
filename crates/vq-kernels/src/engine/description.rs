//! What a transformer engine is given: the sizes of the discrete `Transformer2DModel` forward,
//! its weight tensors by name, and the per-generation text embeddings. Plain data, so that this
//! crate knows nothing of the model crate that fills it.

use std::collections::BTreeMap;
use std::fmt;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

use super::EngineError;

/// The feed-forward activation (diffusers' `activation_fn`). The gated ones halve a doubled
/// projection: the first half is the value, the second the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `"gelu"`: exact (erf) GELU.
    Gelu,
    /// `"gelu-approximate"`: tanh-approximated GELU.
    GeluTanh,
    /// `"geglu-approximate"`: quick GELU `x · σ(1.702 x)`, not gated (ITHQ).
    QuickGelu,
    /// `"linear-silu"`: SiLU.
    Silu,
    /// `"geglu"`: `value · gelu(gate)` (erf GELU).
    Geglu,
    /// `"swiglu"`: `value · silu(gate)`.
    Swiglu,
}

impl Activation {
    /// Whether the projection before it is doubled (value and gate).
    pub fn is_gated(self) -> bool {
        matches!(self, Self::Geglu | Self::Swiglu)
    }
}

/// The sizes of one forward of the discrete transformer: diffusers' `Transformer2DModel` with
/// `norm_type = "ada_norm"` (ITHQ: 36 layers, D = 16 × 88, K = 4096, 32 × 32 latents, 77 × 512
/// text, 100 timesteps).
#[derive(Debug, Clone, PartialEq)]
pub struct TransformerSizes {
    /// Rows of a forward (the guidance pair doubles the images).
    pub batch: usize,
    /// Latent grid height h.
    pub height: usize,
    /// Latent grid width w; pixel p sits at row p / w, column p % w.
    pub width: usize,
    /// Number of attention heads.
    pub heads: usize,
    /// Width of one head; the model width D is heads × head_dim.
    pub head_dim: usize,
    /// Text tokens l.
    pub text_len: usize,
    /// Width of the text embeddings (`cross_attention_dim`).
    pub text_dim: usize,
    /// Hidden width of the feed-forward network (4 D); its input projection is twice as wide
    /// for the gated activations.
    pub ff_inner: usize,
    /// The feed-forward activation.
    pub activation: Activation,
    /// Output classes K (the class embedding has K + 1 rows: the mask class).
    pub classes: usize,
    /// Rows of every AdaLayerNorm's timestep table (`num_embeds_ada_norm`).
    pub timesteps: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Whether the q, k, v projections have a bias (`attention_bias`).
    pub attention_bias: bool,
    /// Epsilon of the AdaLayerNorms' inner LayerNorm.
    pub ada_norm_eps: f64,
    /// Epsilon of each block's LayerNorm before the feed-forward network (`norm3`).
    pub ff_norm_eps: f64,
    /// Epsilon of `norm_out`.
    pub norm_out_eps: f64,
}

impl TransformerSizes {
    /// Model width D.
    pub fn dim(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Latent pixels N = h·w.
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// Width of the feed-forward input projection's output.
    pub fn ff_proj(&self) -> usize {
        if self.activation.is_gated() {
            2 * self.ff_inner
        } else {
            self.ff_inner
        }
    }

    /// Every weight such a model has, with its shape: linear weights `[in, out]` as burn stores
    /// them, vectors `[len]`, tables `[rows, D]`.
    pub fn expected_weights(&self) -> Vec<(WeightId, Vec<usize>)> {
        let (d, k) = (self.dim(), self.classes);
        let mut weights = vec![
            (WeightId::top(Layer::ClassEmbedding, Param::Weight), vec![k + 1, d]),
            (WeightId::top(Layer::HeightEmbedding, Param::Weight), vec![self.height, d]),
            (WeightId::top(Layer::WidthEmbedding, Param::Weight), vec![self.width, d]),
        ];
        for block in 0..self.layers {
            let mut add = |layer: Layer, param: Param, shape: Vec<usize>| {
                weights.push((WeightId::block(block, layer, param), shape));
            };
            for (emb, linear) in
                [(Layer::Norm1Embedding, Layer::Norm1Linear), (Layer::Norm2Embedding, Layer::Norm2Linear)]
            {
                add(emb, Param::Weight, vec![self.timesteps, d]);
                add(linear, Param::Weight, vec![d, 2 * d]);
                add(linear, Param::Bias, vec![2 * d]);
            }
            for (layers, context) in [
                ([Layer::Attn1Q, Layer::Attn1K, Layer::Attn1V, Layer::Attn1Out], d),
                ([Layer::Attn2Q, Layer::Attn2K, Layer::Attn2V, Layer::Attn2Out], self.text_dim),
            ] {
                let [q, key, value, out] = layers;
                for (layer, input) in [(q, d), (key, context), (value, context)] {
                    add(layer, Param::Weight, vec![input, d]);
                    if self.attention_bias {
                        add(layer, Param::Bias, vec![d]);
                    }
                }
                add(out, Param::Weight, vec![d, d]);
                add(out, Param::Bias, vec![d]);
            }
            add(Layer::Norm3, Param::Weight, vec![d]);
            add(Layer::Norm3, Param::Bias, vec![d]);
            add(Layer::FfIn, Param::Weight, vec![d, self.ff_proj()]);
            add(Layer::FfIn, Param::Bias, vec![self.ff_proj()]);
            add(Layer::FfOut, Param::Weight, vec![self.ff_inner, d]);
            add(Layer::FfOut, Param::Bias, vec![d]);
        }
        weights.extend([
            (WeightId::top(Layer::NormOut, Param::Weight), vec![d]),
            (WeightId::top(Layer::NormOut, Param::Bias), vec![d]),
            (WeightId::top(Layer::Out, Param::Weight), vec![d, k]),
            (WeightId::top(Layer::Out, Param::Bias), vec![k]),
        ]);
        weights
    }

    /// Checks the sizes an engine can be planned for.
    pub fn validate(&self) -> Result<(), EngineError> {
        let positive = [
            ("batch", self.batch),
            ("height", self.height),
            ("width", self.width),
            ("heads", self.heads),
            ("head_dim", self.head_dim),
            ("text_len", self.text_len),
            ("text_dim", self.text_dim),
            ("ff_inner", self.ff_inner),
            ("classes", self.classes),
            ("timesteps", self.timesteps),
            ("layers", self.layers),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(EngineError::Description(format!("{name} is 0")));
        }
        let eps = [
            ("ada_norm_eps", self.ada_norm_eps),
            ("ff_norm_eps", self.ff_norm_eps),
            ("norm_out_eps", self.norm_out_eps),
        ];
        if let Some((name, value)) = eps.iter().find(|(_, value)| !(value.is_finite() && *value > 0.0)) {
            return Err(EngineError::Description(format!("{name} is {value}, must be positive")));
        }
        Ok(())
    }
}

/// A layer of the model that owns weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// `latent_image_embedding.emb`: class embeddings `[K + 1, D]`.
    ClassEmbedding,
    /// `latent_image_embedding.height_emb`: row embeddings `[h, D]`.
    HeightEmbedding,
    /// `latent_image_embedding.width_emb`: column embeddings `[w, D]`.
    WidthEmbedding,
    /// `norm1.emb`: timestep table `[T, D]`.
    Norm1Embedding,
    /// `norm1.linear`: D → 2D (scale, then shift).
    Norm1Linear,
    /// `attn1.to_q`.
    Attn1Q,
    /// `attn1.to_k`.
    Attn1K,
    /// `attn1.to_v`.
    Attn1V,
    /// `attn1.to_out.0`.
    Attn1Out,
    /// `norm2.emb`.
    Norm2Embedding,
    /// `norm2.linear`.
    Norm2Linear,
    /// `attn2.to_q`.
    Attn2Q,
    /// `attn2.to_k` (text width → D).
    Attn2K,
    /// `attn2.to_v` (text width → D).
    Attn2V,
    /// `attn2.to_out.0`.
    Attn2Out,
    /// `norm3`: affine LayerNorm (weight = γ, bias = β).
    Norm3,
    /// `ff.net.0.proj`.
    FfIn,
    /// `ff.net.2`.
    FfOut,
    /// `norm_out`: affine LayerNorm.
    NormOut,
    /// `out`: D → K.
    Out,
}

impl Layer {
    /// The layer's path in the diffusers checkpoint, below `transformer_blocks.{i}` for blocks.
    pub fn key(self) -> &'static str {
        match self {
            Self::ClassEmbedding => "latent_image_embedding.emb",
            Self::HeightEmbedding => "latent_image_embedding.height_emb",
            Self::WidthEmbedding => "latent_image_embedding.width_emb",
            Self::Norm1Embedding => "norm1.emb",
            Self::Norm1Linear => "norm1.linear",
            Self::Attn1Q => "attn1.to_q",
            Self::Attn1K => "attn1.to_k",
            Self::Attn1V => "attn1.to_v",
            Self::Attn1Out => "attn1.to_out.0",
            Self::Norm2Embedding => "norm2.emb",
            Self::Norm2Linear => "norm2.linear",
            Self::Attn2Q => "attn2.to_q",
            Self::Attn2K => "attn2.to_k",
            Self::Attn2V => "attn2.to_v",
            Self::Attn2Out => "attn2.to_out.0",
            Self::Norm3 => "norm3",
            Self::FfIn => "ff.net.0.proj",
            Self::FfOut => "ff.net.2",
            Self::NormOut => "norm_out",
            Self::Out => "out",
        }
    }
}

/// Which tensor of a layer: the weight (LayerNorm γ, embedding table) or the bias (β).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Param {
    /// `weight`.
    Weight,
    /// `bias`.
    Bias,
}

/// One weight tensor of the model, named like its checkpoint key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WeightId {
    /// The transformer block, `None` outside the blocks.
    pub block: Option<usize>,
    /// The layer.
    pub layer: Layer,
    /// Weight or bias.
    pub param: Param,
}

impl WeightId {
    /// A weight outside the blocks.
    pub fn top(layer: Layer, param: Param) -> Self {
        Self { block: None, layer, param }
    }

    /// A weight of block `block`.
    pub fn block(block: usize, layer: Layer, param: Param) -> Self {
        Self { block: Some(block), layer, param }
    }
}

impl fmt::Display for WeightId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(block) = self.block {
            write!(f, "transformer_blocks.{block}.")?;
        }
        let param = match self.param {
            Param::Weight => "weight",
            Param::Bias => "bias",
        };
        write!(f, "{}.{param}", self.layer.key())
    }
}

/// A weight tensor: a matrix (linear weight `[in, out]`, embedding table) or a vector.
#[derive(Debug, Clone)]
pub enum WeightTensor<B: Backend> {
    /// Rank 2.
    Matrix(Tensor<B, 2>),
    /// Rank 1.
    Vector(Tensor<B, 1>),
}

impl<B: Backend> WeightTensor<B> {
    /// The tensor's shape.
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Self::Matrix(t) => t.dims().to_vec(),
            Self::Vector(t) => t.dims().to_vec(),
        }
    }

    /// The tensor's dtype.
    pub fn dtype(&self) -> DType {
        match self {
            Self::Matrix(t) => t.dtype(),
            Self::Vector(t) => t.dtype(),
        }
    }

    /// The values as f32, row-major (reads the device).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        let data = match self {
            Self::Matrix(t) => t.to_data(),
            Self::Vector(t) => t.to_data(),
        };
        data.convert::<f32>().to_vec::<f32>().expect("f32 data after convert")
    }
}

/// The model's weight tensors by name.
#[derive(Debug, Clone)]
pub struct TransformerWeights<B: Backend> {
    tensors: BTreeMap<WeightId, WeightTensor<B>>,
}

impl<B: Backend> Default for TransformerWeights<B> {
    fn default() -> Self {
        Self { tensors: BTreeMap::new() }
    }
}

impl<B: Backend> TransformerWeights<B> {
    /// Adds (or replaces) a weight.
    pub fn insert(&mut self, id: WeightId, tensor: WeightTensor<B>) {
        self.tensors.insert(id, tensor);
    }

    /// The weight `id`.
    pub fn get(&self, id: &WeightId) -> Option<&WeightTensor<B>> {
        self.tensors.get(id)
    }

    /// Every weight, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&WeightId, &WeightTensor<B>)> {
        self.tensors.iter()
    }

    /// Number of weights.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The same weights on another backend (e.g. a wrapper backend's inner one).
    pub fn map<C: Backend>(
        self,
        mut matrix: impl FnMut(Tensor<B, 2>) -> Tensor<C, 2>,
        mut vector: impl FnMut(Tensor<B, 1>) -> Tensor<C, 1>,
    ) -> TransformerWeights<C> {
        let tensors = self
            .tensors
            .into_iter()
            .map(|(id, tensor)| {
                let mapped = match tensor {
                    WeightTensor::Matrix(t) => WeightTensor::Matrix(matrix(t)),
                    WeightTensor::Vector(t) => WeightTensor::Vector(vector(t)),
                };
                (id, mapped)
            })
            .collect();
        TransformerWeights { tensors }
    }
}

/// Everything a transformer engine is built from: the model's sizes and weights, and the text
/// embeddings of one generation (constant over its steps).
#[derive(Debug, Clone)]
pub struct TransformerDescription<B: Backend> {
    /// The sizes, the batch included.
    pub sizes: TransformerSizes,
    /// The weights.
    pub weights: TransformerWeights<B>,
    /// `[batch, text_len, text_dim]`: the `encoder_hidden_states` of every forward.
    pub text: Tensor<B, 3>,
}

impl<B: Backend> TransformerDescription<B> {
    /// Checks that the weights are exactly those of [`TransformerSizes::expected_weights`], with
    /// those shapes, all of one float dtype (returned), and that the text has the planned shape.
    pub fn validate(&self) -> Result<DType, EngineError> {
        self.sizes.validate()?;
        let expected = self.sizes.expected_weights();
        for (id, shape) in &expected {
            let tensor =
                self.weights.get(id).ok_or_else(|| EngineError::Description(format!("missing weight {id}")))?;
            if &tensor.shape() != shape {
                return Err(EngineError::Description(format!(
                    "weight {id} is {:?}, the sizes say {shape:?}",
                    tensor.shape()
                )));
            }
        }
        if self.weights.len() != expected.len() {
            let unexpected: Vec<String> = self
                .weights
                .iter()
                .filter(|(id, _)| !expected.iter().any(|(e, _)| e == *id))
                .map(|(id, _)| id.to_string())
                .collect();
            return Err(EngineError::Description(format!("weights the sizes do not have: {}", unexpected.join(", "))));
        }
        let text = [self.sizes.batch, self.sizes.text_len, self.sizes.text_dim];
        if self.text.dims() != text {
            return Err(EngineError::Description(format!("text is {:?}, the sizes say {text:?}", self.text.dims())));
        }
        let dtype = self.text.dtype();
        if let Some((id, tensor)) = self.weights.iter().find(|(_, t)| t.dtype() != dtype) {
            return Err(EngineError::Description(format!(
                "weight {id} is {:?} while the text is {dtype:?}: an engine runs in one float type",
                tensor.dtype()
            )));
        }
        Ok(dtype)
    }
}
