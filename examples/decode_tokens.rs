//! Decode VQ tokens to an image with the VQ-VAE alone: a JSON file of token rows (as
//! `vq-diffusion generate --tokens` writes) or, without one, a gradient of codebook ids.
//!
//! ```sh
//! cargo run --example decode_tokens -- [PIPELINE_DIR] [TOKENS.json] [OUT.png]
//! ```

use std::path::PathBuf;

use burn::backend::NdArray;
use burn::tensor::{Int, Tensor, TensorData};
use vq_model::{to_rgb8, to_unit_range, VQModel};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir =
        PathBuf::from(args.next().unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/models/shapes").into()));
    let tokens = args.next().filter(|a| a != "-");
    let out = PathBuf::from(args.next().unwrap_or_else(|| "decoded.png".into()));
    let device = Default::default();

    let vqvae = VQModel::<NdArray>::from_pretrained(&dir.join("vqvae"), None, &device)?;
    let config = vq_model::VQModelConfig::from_file(&dir.join("vqvae/config.json"))?;
    let rows: Vec<Vec<i64>> = match tokens {
        Some(path) => serde_json::from_str(&std::fs::read_to_string(path)?)?,
        None => {
            // A grid of the transformer's latent size of ids cycling through the codebook.
            let side = transformer2d::Transformer2DConfig::from_file(&dir.join("transformer/config.json"))?.sample_size;
            let k = config.num_vq_embeddings as i64;
            vec![(0..(side * side) as i64).map(|i| (i * 7) % k).collect()]
        }
    };
    let side = (rows[0].len() as f64).sqrt() as usize;
    let ids = Tensor::<NdArray, 2, Int>::from_data(TensorData::new(rows.concat(), [rows.len(), side * side]), &device);
    let images = to_unit_range(vqvae.decode_indices(ids, (side, side))?);
    let [_, height, width, _] = images.dims();
    let bytes = to_rgb8(images.narrow(0, 0, 1)).to_vec::<u8>()?;
    image::RgbImage::from_raw(width as u32, height as u32, bytes).ok_or("bad buffer")?.save(&out)?;
    println!("decoded {}×{side} tokens into {} ({width}×{height})", side, out.display());
    Ok(())
}
