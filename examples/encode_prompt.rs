//! Encode a prompt with CLIP, as the pipeline does: tokenize (pad to the tokenizer's length), run the text
//! encoder, L2-normalise every token vector.
//!
//! ```sh
//! cargo run --example encode_prompt -- [PIPELINE_DIR] ["a prompt"]
//! ```

use std::path::PathBuf;

use burn::backend::NdArray;
use clip_text::{CLIPTextModel, Tokenizer, Truncation};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir =
        PathBuf::from(args.next().unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/models/shapes").into()));
    let prompt = args.next().unwrap_or_else(|| "a large red circle in the center on a blue background".into());
    let device = Default::default();

    let tokenizer = Tokenizer::from_dir(&dir.join("tokenizer"))?;
    let text_encoder = CLIPTextModel::<NdArray>::from_pretrained(&dir.join("text_encoder"), None, &device)?;
    let padded = tokenizer.encode_padded(&prompt, Truncation::Diffusers)?;
    println!(
        "{prompt:?} → {} tokens: {:?}",
        padded.untruncated_len,
        &padded.ids[..padded.untruncated_len.min(padded.ids.len())]
    );

    let ids = tokenizer.encode_to_tensor::<NdArray>(&[prompt.as_str()], Truncation::Diffusers, &device)?;
    let hidden = text_encoder.forward(ids).last_hidden_state;
    let embeddings = vq_pipeline::l2_normalize_last(hidden);
    let [batch, length, width] = embeddings.dims();
    println!("prompt embeddings: [{batch}, {length}, {width}]");
    let first: Vec<f32> = embeddings.slice([0..1, 1..2, 0..width.min(6)]).into_data().to_vec()?;
    println!("first token, first values: {first:?}");
    Ok(())
}
