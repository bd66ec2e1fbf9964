//! Images ↔ burn tensors in the VQ-VAE's convention: NCHW, values in [−1, 1].

use burn::tensor::{backend::Backend, Tensor, TensorData};
use image::RgbImage;

/// Stacks equally sized RGB images into a `[batch, 3, height, width]` tensor with values
/// `byte / 127.5 − 1` in [−1, 1].
///
/// # Panics
/// If `images` is empty or the images differ in size.
pub fn images_to_tensor<B: Backend>(images: &[&RgbImage], device: &B::Device) -> Tensor<B, 4> {
    assert!(!images.is_empty(), "images_to_tensor needs at least one image");
    let (width, height) = images[0].dimensions();
    let (w, h) = (width as usize, height as usize);
    let mut values = Vec::with_capacity(images.len() * 3 * h * w);
    for image in images {
        assert_eq!(image.dimensions(), (width, height), "all images must have the same size");
        // HWC bytes → CHW floats.
        let bytes = image.as_raw();
        for channel in 0..3 {
            values.extend(bytes[channel..].iter().step_by(3).map(|&b| f32::from(b) / 127.5 - 1.0));
        }
    }
    Tensor::from_data(TensorData::new(values, [images.len(), 3, h, w]), device)
}

/// Turns a `[batch, 3, height, width]` tensor of values in [−1, 1] into images the way
/// diffusers' pipeline does: `(x / 2 + 0.5).clamp(0, 1)`, then `round(255 · x)` per byte.
///
/// # Panics
/// If the tensor does not have 3 channels.
pub fn tensor_to_images<B: Backend>(images: Tensor<B, 4>) -> Vec<RgbImage> {
    let [batch, channels, h, w] = images.dims();
    assert_eq!(channels, 3, "tensor_to_images needs [batch, 3, height, width], got {:?}", images.dims());
    let values = images
        .div_scalar(2.0)
        .add_scalar(0.5)
        .clamp(0.0, 1.0)
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("a float tensor converts to f32 values");
    let plane = h * w;
    (0..batch)
        .map(|b| {
            let chw = &values[b * 3 * plane..(b + 1) * 3 * plane];
            // CHW floats → HWC bytes.
            let bytes =
                (0..plane).flat_map(|p| (0..3).map(move |c| (chw[c * plane + p] * 255.0).round() as u8)).collect();
            RgbImage::from_raw(w as u32, h as u32, bytes).expect("buffer length is 3 · h · w")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    #[test]
    fn images_survive_the_round_trip_bit_exactly() {
        let mut image = RgbImage::new(5, 4);
        for (i, pixel) in image.pixels_mut().enumerate() {
            pixel.0 = [(i * 13 % 256) as u8, (255 - i * 7 % 256) as u8, (i * 61 % 256) as u8];
        }
        let other = RgbImage::from_pixel(5, 4, image::Rgb([0, 128, 255]));
        let tensor = images_to_tensor::<NdArray<f32>>(&[&image, &other], &Default::default());
        assert_eq!(tensor.dims(), [2, 3, 4, 5]);
        // Channel 2 of pixel (x = 1, y = 0) of the first image.
        let value = tensor.clone().slice([0..1, 2..3, 0..1, 1..2]).into_scalar();
        assert_eq!(value, f32::from(image.get_pixel(1, 0).0[2]) / 127.5 - 1.0);
        assert_eq!(tensor_to_images(tensor), vec![image, other]);
    }
}
