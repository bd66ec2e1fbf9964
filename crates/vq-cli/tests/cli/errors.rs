//! Every bad input gives one `error: …` line naming the culprit and exit status 2 (usage) or
//! 1 (anything else), never a panic.

use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::common::{tiny, vq_diffusion, Run, Scratch};

/// `generate` on `model` with `extra` flags, and `--steps 2` and `--output` in `scratch`
/// unless `extra` sets them.
fn generate(scratch: &Scratch, model: &Path, extra: &[&str]) -> Run {
    let output = scratch.join("out.png").display().to_string();
    let model = model.display().to_string();
    let mut args = vec!["generate", "--model", &model, "--prompt", "a cat"];
    for (flag, value) in [("--steps", "2"), ("--output", output.as_str())] {
        if !extra.contains(&flag) {
            args.extend([flag, value]);
        }
    }
    args.extend(extra);
    vq_diffusion(&args)
}

/// `generate` on the committed hub pipeline with `flags`.
fn generate_hub(flags: &[&str]) -> Run {
    let scratch = Scratch::new("flags");
    generate(&scratch, &tiny("hub"), flags)
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Replaces `file` (a safetensors file) with the same tensors, except `name`, which gets
/// `shape` (zeros, f32).
fn replace_tensor(file: &Path, name: &str, shape: &[usize]) {
    let bytes = std::fs::read(file).expect("read weights");
    let weights = SafeTensors::deserialize(&bytes).expect("valid safetensors");
    let zeros = vec![0u8; shape.iter().product::<usize>() * 4];
    let mut tensors: Vec<(String, TensorView<'_>)> = weights.tensors().into_iter().filter(|(n, _)| n != name).collect();
    tensors.push((name.to_string(), TensorView::new(Dtype::F32, shape.to_vec(), &zeros).expect("tensor view")));
    safetensors::serialize_to_file(tensors, None, file).expect("write weights");
}

// Model paths and files: exit status 1.

#[test]
fn missing_model_folder() {
    let scratch = Scratch::new("missing");
    let model = scratch.join("no/such/pipeline");
    generate(&scratch, &model, &[]).assert_error(1, &[&display(&model), "not a folder"]);
}

#[test]
fn model_path_is_a_file() {
    let scratch = Scratch::new("file");
    let model = scratch.join("weights.bin");
    std::fs::write(&model, b"not a pipeline").expect("write file");
    generate(&scratch, &model, &[]).assert_error(1, &[&display(&model)]);
}

#[test]
fn folder_without_model_index() {
    let scratch = Scratch::new("empty");
    let model = scratch.join("pipeline");
    std::fs::create_dir(&model).expect("create folder");
    generate(&scratch, &model, &[]).assert_error(1, &["cannot read", &display(&model.join("model_index.json"))]);
}

#[test]
fn unreadable_config_file() {
    // A folder where a file should be cannot be read by anyone (root included).
    let scratch = Scratch::new("unreadable");
    let model = scratch.copy_of("hub");
    let config = model.join("vqvae/config.json");
    std::fs::remove_file(&config).expect("remove config");
    std::fs::create_dir(&config).expect("folder in its place");
    generate(&scratch, &model, &[]).assert_error(1, &["cannot read", &display(&config)]);
}

#[test]
fn truncated_weights_file() {
    let scratch = Scratch::new("truncated");
    let model = scratch.copy_of("hub");
    let weights = model.join("transformer/diffusion_pytorch_model.safetensors");
    let bytes = std::fs::read(&weights).expect("read weights");
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).expect("truncate");
    generate(&scratch, &model, &[]).assert_error(1, &["transformer", &display(&weights)]);
}

#[test]
fn weights_tensor_of_the_wrong_shape() {
    let scratch = Scratch::new("shape");
    let model = scratch.copy_of("hub");
    let weights = model.join("transformer/diffusion_pytorch_model.safetensors");
    replace_tensor(&weights, "out.weight", &[30, 24]);
    generate(&scratch, &model, &[]).assert_error(1, &[&display(&weights), "out", "[30, 24]"]);
}

#[test]
fn learned_embeddings_of_the_wrong_shape() {
    let scratch = Scratch::new("embeddings");
    let model = scratch.copy_of("hub");
    let weights = model.join("learned_classifier_free_sampling_embeddings/diffusion_pytorch_model.safetensors");
    std::fs::remove_file(&weights).expect("remove embeddings");
    let zeros = vec![0u8; 3 * 16 * 4];
    let view = TensorView::new(Dtype::F32, vec![3, 16], &zeros).expect("tensor view");
    safetensors::serialize_to_file([("embeddings", view)], None, &weights).expect("write embeddings");
    generate(&scratch, &model, &[]).assert_error(1, &[&display(&weights), "embeddings", "[3, 16]"]);
}

#[test]
fn missing_config() {
    let scratch = Scratch::new("noconfig");
    let model = scratch.copy_of("hub");
    let config = model.join("transformer/config.json");
    std::fs::remove_file(&config).expect("remove config");
    generate(&scratch, &model, &[]).assert_error(1, &[&display(&config)]);
}

#[test]
fn invalid_config() {
    let scratch = Scratch::new("badconfig");
    let model = scratch.copy_of("hub");
    std::fs::write(model.join("transformer/config.json"), "{ \"num_layers\": ").expect("write config");
    generate(&scratch, &model, &[]).assert_error(1, &["transformer", "config"]);
}

#[test]
fn invalid_model_index() {
    let scratch = Scratch::new("badindex");
    let model = scratch.copy_of("hub");
    let index = model.join("model_index.json");
    std::fs::write(&index, "{\"_class_name\": \"StableDiffusionPipeline\"}").expect("write index");
    generate(&scratch, &model, &[]).assert_error(1, &[&display(&index), "VQDiffusionPipeline"]);
}

// Out-of-range values: exit status 2, naming the flag.

#[test]
fn zero_steps() {
    generate_hub(&["--steps", "0"]).assert_error(2, &["--steps", "0"]);
}

#[test]
fn more_steps_than_the_model_was_trained_with() {
    // Checked once the model is loaded: the tiny pipeline has num_train_timesteps 100.
    generate_hub(&["--steps", "101"]).assert_error(2, &["--steps", "101", "100"]);
}

#[test]
fn truncation_rate_zero() {
    generate_hub(&["--truncation-rate", "0"]).assert_error(2, &["--truncation-rate", "(0, 1]"]);
}

#[test]
fn truncation_rate_above_one() {
    generate_hub(&["--truncation-rate", "1.5"]).assert_error(2, &["--truncation-rate", "1.5"]);
}

#[test]
fn negative_guidance_scale() {
    generate_hub(&["--guidance-scale", "-1"]).assert_error(2, &["--guidance-scale", "-1"]);
}

#[test]
fn a_purity_weight_without_the_purity_sampler() {
    generate_hub(&["--purity-weight", "2"]).assert_error(2, &["--purity-weight", "--sampler purity"]);
    generate_hub(&["--sampler", "reveal", "--purity-weight", "2"]).assert_error(2, &["--purity-weight"]);
}

#[test]
fn negative_purity_weight() {
    generate_hub(&["--sampler", "purity", "--purity-weight", "-0.5"]).assert_error(2, &["--purity-weight", "-0.5"]);
}

#[test]
fn zero_images_per_prompt() {
    generate_hub(&["--num-images-per-prompt", "0"]).assert_error(2, &["--num-images-per-prompt"]);
}

#[test]
fn no_prompt() {
    let model = display(&tiny("hub"));
    vq_diffusion(&["generate", "--model", &model]).assert_clap_error(&["--prompt"]);
}

#[test]
fn malformed_number() {
    generate_hub(&["--steps", "ten"]).assert_clap_error(&["--steps", "ten"]);
}

// Backends and precisions.

#[cfg(not(feature = "cuda"))]
#[test]
fn backend_not_compiled_in() {
    generate_hub(&["--backend", "cuda"]).assert_error(2, &["--backend cuda", "not compiled", "--features cuda"]);
}

#[cfg(not(feature = "wgpu"))]
#[test]
fn wgpu_on_opengl_needs_the_wgpu_feature() {
    generate_hub(&["--backend", "wgpu-gl"]).assert_error(2, &["--backend wgpu-gl", "not compiled", "--features wgpu"]);
}

#[cfg(feature = "ndarray")]
#[test]
fn half_precision_on_ndarray() {
    // NdArray computes in f32 only: a one-line error, not a panic.
    generate_hub(&["--backend", "ndarray", "--dtype", "f16"]).assert_error(1, &["--dtype f16", "ndarray"]);
}

// Outputs: checked before the model loads, exit status 1.

#[test]
fn output_in_a_missing_folder() {
    let scratch = Scratch::new("nodir");
    let output = scratch.join("no/such/folder/out.png");
    let run = generate(&scratch, &tiny("hub"), &["--output", &display(&output)]);
    run.assert_error(1, &["cannot write", &display(&output)]);
    assert!(!run.stderr.contains("Loading"), "checked before loading: {}", run.stderr);
}

#[test]
fn output_is_a_folder() {
    let scratch = Scratch::new("outdir");
    generate(&scratch, &tiny("hub"), &["--output", &display(&scratch.0)])
        .assert_error(1, &[&display(&scratch.0), "directory"]);
}

#[test]
fn tokens_file_is_an_image_file() {
    let scratch = Scratch::new("clash");
    let image = display(&scratch.join("out-1.png"));
    let run = generate(&scratch, &tiny("hub"), &["--num-images-per-prompt", "2", "--tokens", &image]);
    run.assert_error(2, &["--tokens", &image, "--output"]);
}

#[test]
fn tokens_file_in_a_missing_folder() {
    let scratch = Scratch::new("notokdir");
    let tokens = scratch.join("no/such/folder/tokens.json");
    generate(&scratch, &tiny("hub"), &["--tokens", &display(&tokens)]).assert_error(1, &[&display(&tokens)]);
    assert!(!scratch.join("out.png").exists(), "no image written when a file cannot be");
}
