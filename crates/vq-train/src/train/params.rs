//! Parameter utilities: an exponential moving average of weights.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{backend::Backend, Tensor, TensorPrimitive};

/// Collects every float parameter by id (dimension-erased).
struct Collect<B: Backend> {
    tensors: HashMap<ParamId, TensorPrimitive<B>>,
}

impl<B: Backend> ModuleVisitor<B> for Collect<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.tensors.insert(param.id, param.val().into_primitive());
    }
}

/// `ema ← decay · ema + (1 − decay) · current`, parameter by parameter (matched by id).
struct Blend<B: Backend> {
    current: HashMap<ParamId, TensorPrimitive<B>>,
    decay: f64,
}

impl<B: Backend> ModuleMapper<B> for Blend<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, ema, mapper) = param.consume();
        let current = self.current.remove(&id).expect("the EMA and the model have the same parameters");
        let current = Tensor::<B, D>::from_primitive(current);
        let blended = ema.mul_scalar(self.decay) + current.mul_scalar(1.0 - self.decay);
        Param::from_mapped_value(id, blended, mapper)
    }
}

/// Moves every parameter of `ema` towards the parameter of `current` with the same id.
///
/// # Panics
/// If the two modules do not have the same parameter ids (`current` must descend from the
/// module `ema` was cloned from, e.g. through `AutodiffModule::valid`).
pub fn update_ema<B: Backend, M: Module<B>>(ema: M, current: &M, decay: f64) -> M {
    let mut collect = Collect { tensors: HashMap::new() };
    current.visit(&mut collect);
    ema.map(&mut Blend { current: collect.tensors, decay })
}

/// The decay of step `step` (0-based): `min(decay, (1 + step) / (10 + step))`, so that early
/// averages are not dominated by the random initialisation (as in common EMA implementations).
pub fn ema_decay_at(step: usize, decay: f64) -> f64 {
    decay.min((1.0 + step as f64) / (10.0 + step as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::nn::{Linear, LinearConfig};

    type B = NdArray<f32>;

    #[test]
    fn ema_moves_each_parameter_towards_the_current_value() {
        let device = Default::default();
        let model: Linear<B> = LinearConfig::new(3, 2).init(&device);
        // Materialise the lazy initialisation once, so that the clones share the values.
        model.weight.val();
        model.bias.as_ref().unwrap().val();
        let ema = model.clone();
        // A "trained" model: the same ids, weights + 1.
        let trained = model.clone().map(&mut PlusOne);
        let ema = update_ema(ema, &trained, 0.75);
        let expected = model.weight.val().add_scalar(0.25);
        ema.weight.val().into_data().assert_approx_eq::<f32>(&expected.into_data(), Default::default());
        assert_eq!(ema.weight.id, model.weight.id);
    }

    struct PlusOne;
    impl ModuleMapper<B> for PlusOne {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            Param::from_mapped_value(id, tensor.add_scalar(1.0), mapper)
        }
    }
}
