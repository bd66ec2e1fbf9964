//! The forward of one generation: what stays constant over its steps is computed once.
//!
//! Over a generation the text embeddings do not change, so neither do every block's
//! cross-attention keys and values. [`Transformer2DModel::prepare`] computes them once; where
//! the backend has a whole-forward engine ([`KernelBackend::transformer_engine`]) it builds
//! that instead, which also holds the AdaLayerNorms' scale and shift for every timestep.

use burn::tensor::{Int, Tensor};
use vq_kernels::engine::StepTime;
use vq_kernels::{EngineChoice, EngineError, KernelBackend, TransformerEngine};

use crate::model::Context;
use crate::{Timesteps, Transformer2DModel};

/// How [`Transformer2DModel::prepare`] prepares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrepareOptions {
    /// Whether to use the backend's engine (default: where there is one).
    pub engine: EngineChoice,
}

impl PrepareOptions {
    /// Options with the engine choice `engine`.
    pub fn with_engine(mut self, engine: EngineChoice) -> Self {
        self.engine = engine;
        self
    }
}

/// A [`Transformer2DModel`] prepared for one generation's text: [`forward`](Self::forward)
/// computes what [`Transformer2DModel::forward`] computes for that text.
pub struct PreparedTransformer<'a, B: KernelBackend> {
    model: &'a Transformer2DModel<B>,
    /// The text as given, for forwards the engine does not take (another latent length).
    text: Tensor<B, 3>,
    /// Every block's cross-attention keys and values of the text (without an engine).
    key_values: Option<Context<B>>,
    engine: Option<Box<dyn TransformerEngine<B>>>,
    /// Why [`EngineChoice::Auto`] found no engine although the backend has one.
    fallback: Option<String>,
}

impl<B: KernelBackend> Transformer2DModel<B> {
    /// Prepares the forwards of one generation over `text` (`[batch, l, cross_attention_dim]`,
    /// the `encoder_hidden_states` of every step).
    ///
    /// With [`EngineChoice::Auto`] (the default) the backend's engine runs the forwards where it
    /// has one; an engine that fails to build leaves the tensor ops running and says why in
    /// [`PreparedTransformer::fallback`]. Without an engine the cross-attention keys and values
    /// of the text are computed here, once.
    ///
    /// # Errors
    ///
    /// With [`EngineChoice::On`], when the backend has no engine or it fails to build.
    ///
    /// # Panics
    ///
    /// If the text's width is not `cross_attention_dim`.
    pub fn prepare(
        &self,
        text: Tensor<B, 3>,
        options: &PrepareOptions,
    ) -> Result<PreparedTransformer<'_, B>, EngineError> {
        self.check_text_width(&text);
        let (engine, fallback) = match options.engine {
            EngineChoice::Off => (None, None),
            choice => match B::transformer_engine(&self.describe(text.clone())) {
                Ok(Some(engine)) => (Some(engine), None),
                Ok(None) if choice == EngineChoice::On => {
                    let backend = B::name(&text.device());
                    return Err(EngineError::Unavailable(format!("the {backend} backend has no transformer engine")));
                }
                Ok(None) => (None, None),
                Err(error) if choice == EngineChoice::On => return Err(error),
                Err(error) => (None, Some(error.to_string())),
            },
        };
        Ok(self.prepared(text, engine, fallback))
    }

    /// [`prepare`](Self::prepare) with a given engine (another backend's, a test's).
    pub fn prepare_with_engine(
        &self,
        text: Tensor<B, 3>,
        engine: Box<dyn TransformerEngine<B>>,
    ) -> PreparedTransformer<'_, B> {
        self.check_text_width(&text);
        self.prepared(text, Some(engine), None)
    }

    fn prepared(
        &self,
        text: Tensor<B, 3>,
        engine: Option<Box<dyn TransformerEngine<B>>>,
        fallback: Option<String>,
    ) -> PreparedTransformer<'_, B> {
        let key_values = engine.is_none().then(|| {
            Context::KeyValues(
                self.transformer_blocks.iter().map(|block| block.attn2.key_value(text.clone())).collect(),
            )
        });
        PreparedTransformer { model: self, text, key_values, engine, fallback }
    }
}

impl<B: KernelBackend> PreparedTransformer<'_, B> {
    /// log p(x₀ | x_t) for the prepared text: [`Transformer2DModel::forward`] with that text,
    /// computed by the engine where there is one (for latents of `sample_size²` pixels).
    ///
    /// # Shapes
    ///
    /// - `latents`: `[batch, n]` class ids in `0..=K`, the text's batch
    /// - output: `[batch, K, n]` f32
    ///
    /// # Panics
    ///
    /// As [`Transformer2DModel::forward`].
    pub fn forward(&self, latents: Tensor<B, 2, Int>, timesteps: &Timesteps) -> Tensor<B, 3> {
        let [batch, n] = latents.dims();
        if let Some(engine) = &self.engine {
            let text_batch = self.text.dims()[0];
            assert_eq!(text_batch, batch, "text batch {text_batch} != latent batch {batch}");
            if n == self.model.latent_image_embedding.pixels() {
                return engine.forward(latents, &timesteps.per_sample(batch, self.model.num_embeds_ada_norm));
            }
        }
        match &self.key_values {
            Some(key_values) => self.model.forward_in(latents, key_values, timesteps),
            None => self.model.forward(latents, self.text.clone(), timesteps),
        }
    }

    /// What the engine is, when one runs the forwards.
    pub fn engine(&self) -> Option<String> {
        self.engine.as_ref().map(|engine| engine.describe())
    }

    /// Why the backend's engine is not running, when it failed to build under
    /// [`EngineChoice::Auto`].
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The engine's steps timed alone ([`TransformerEngine::profile`]), after a forward.
    pub fn profile(&self, repeats: usize) -> Option<Vec<StepTime>> {
        self.engine.as_ref().and_then(|engine| engine.profile(repeats))
    }
}
