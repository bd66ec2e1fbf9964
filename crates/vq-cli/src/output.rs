//! What a run writes: image names and the token JSON (the parameters each image records are
//! [`vq_pipeline::ImageMetadata`]'s, shared with the HTTP server).

use std::path::{Path, PathBuf};

/// Image `index` of a batch of `count`: `output` itself for one image, else `stem-index.ext`
/// (or `name-index` without an extension); the batch order is the file order.
pub fn image_path(output: &Path, count: usize, index: usize) -> PathBuf {
    if count == 1 {
        return output.to_path_buf();
    }
    let stem = output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match output.extension() {
        Some(ext) => format!("{stem}-{index}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{index}"),
    };
    output.with_file_name(name)
}

/// The token ids as JSON: one array of row-major latent-pixel ids per image, and a newline.
pub fn tokens_json(tokens: &[Vec<i64>]) -> String {
    let mut json = serde_json::Value::from(tokens.to_vec()).to_string();
    json.push('\n');
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_files_are_numbered_before_the_extension() {
        assert_eq!(image_path(Path::new("out/a.png"), 1, 0), PathBuf::from("out/a.png"));
        assert_eq!(image_path(Path::new("out/a.b.png"), 2, 0), PathBuf::from("out/a.b-0.png"));
        assert_eq!(image_path(Path::new("out/a.b.png"), 2, 1), PathBuf::from("out/a.b-1.png"));
        assert_eq!(image_path(Path::new("img"), 2, 1), PathBuf::from("img-1"));
    }

    #[test]
    fn tokens_are_one_json_array_per_image() {
        assert_eq!(tokens_json(&[vec![1, 2], vec![3, 4]]), "[[1,2],[3,4]]\n");
    }
}
