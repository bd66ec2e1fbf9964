//! Reading users' pictures: decoding limits, errors that name the file, and fitting any aspect
//! ratio to the model's size. The inputs are the `picture` fuzz target's corpus.

use std::path::{Path, PathBuf};

use image::GenericImageView;
use vq_pipeline::picture::PICTURE_MAX_SIDE;
use vq_pipeline::{decode_picture, fit_image, read_picture, PipelineError};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/picture").join(name)
}

fn decode(name: &str) -> Result<image::DynamicImage, image::ImageError> {
    decode_picture(&std::fs::read(corpus(name)).unwrap())
}

#[test]
fn valid_pictures_decode_at_their_size() {
    for (name, size) in
        [("rgb_16x16", (16, 16)), ("mask_gray_16x16", (16, 16)), ("rgb16_8x8", (8, 8)), ("rgba_strip_1x300", (1, 300))]
    {
        let picture = decode(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(picture.dimensions(), size, "{name}");
    }
}

#[test]
fn declared_sizes_beyond_the_limits_are_refused_before_decoding() {
    for name in ["huge_header_100000x100000", "beyond_side_8193x1"] {
        match decode(name) {
            Err(image::ImageError::Limits(_)) => {}
            other => panic!("{name}: expected a limit error, got {other:?}"),
        }
    }
    // One pixel beyond the limit, either way round; at the limit it decodes.
    for (w, h, ok) in [(PICTURE_MAX_SIDE + 1, 1, false), (1, PICTURE_MAX_SIDE + 1, false), (PICTURE_MAX_SIDE, 1, true)]
    {
        let mut png = Vec::new();
        image::GrayImage::new(w, h).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        assert_eq!(decode_picture(&png).is_ok(), ok, "{w} × {h}");
    }
}

#[test]
fn malformed_pictures_are_errors() {
    for name in ["zero_width", "bad_crc", "truncated_rgb"] {
        assert!(decode(name).is_err(), "{name} decoded");
    }
    assert!(decode_picture(b"").is_err());
    assert!(decode_picture(b"just some text, not a picture").is_err());
}

#[test]
fn read_picture_names_the_file() {
    let scratch = std::env::temp_dir().join(format!("vq-picture-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let text = scratch.join("notes.png");
    std::fs::write(&text, "not a picture").unwrap();
    match read_picture(&text) {
        Err(e @ PipelineError::Picture { .. }) => {
            let message = e.to_string();
            assert!(message.starts_with(&format!("{} is not a readable picture", text.display())), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A folder is not a regular file: refused before reading.
    match read_picture(&scratch) {
        Err(PipelineError::Io { path, .. }) => assert_eq!(path, scratch),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&scratch).unwrap();
}

#[test]
fn fit_image_resizes_to_cover_and_crops_the_centre() {
    // 40 × 20: left half red, right half blue, a green middle stripe 4 px wide.
    let image = image::RgbImage::from_fn(40, 20, |x, _| match x {
        18..=21 => image::Rgb([0, 255, 0]),
        0..=17 => image::Rgb([255, 0, 0]),
        _ => image::Rgb([0, 0, 255]),
    });
    let fitted = fit_image(&image, (16, 16));
    assert_eq!(fitted.dimensions(), (16, 16));
    // Scaled to 32 × 16, cropped to x in 8..24: red, then green at the centre, then blue.
    assert!(fitted.get_pixel(1, 8).0[0] > 200 && fitted.get_pixel(14, 8).0[2] > 200);
    assert!(fitted.get_pixel(8, 8).0[1] > 150, "{:?}", fitted.get_pixel(8, 8));
    assert_eq!(fit_image(&fitted, (16, 16)), fitted, "the right size is left alone");
}

#[test]
fn a_thin_strip_is_fitted_from_its_centre_without_growing() {
    // 1 × 300, red rising with the row: the centred 1 × 1 window is row (300 − 1) / 2 = 149 (red 149, blue 106).
    let strip = decode("rgba_strip_1x300").unwrap().to_rgb8();
    let fitted = fit_image(&strip, (64, 64));
    assert_eq!(fitted.dimensions(), (64, 64));
    for pixel in fitted.pixels() {
        assert_eq!(pixel.0, [149, 0, 106]);
    }
    // Wide the other way: 300 × 2 grey ramp, window x in 149..151.
    let wide = decode("wide_300x2").unwrap().to_luma8();
    let fitted = fit_image(&wide, (8, 8));
    assert!(fitted.pixels().all(|p| (149..=150).contains(&p.0[0])), "{:?}", fitted.pixels().next());
}

#[test]
fn an_empty_picture_fits_as_black() {
    let empty = image::GrayImage::new(0, 5);
    let fitted = fit_image(&empty, (4, 4));
    assert_eq!(fitted.dimensions(), (4, 4));
    assert!(fitted.pixels().all(|p| p.0[0] == 0));
}

#[test]
fn a_large_picture_fits_as_lanczos_would_within_two_levels() {
    // 1000 × 1000 ramps: averaged down by 31 to 32 × 32, then Lanczos to 16 × 16; against
    // Lanczos alone (support of 6 × 62 source pixels a side).
    let picture =
        image::RgbImage::from_fn(1000, 1000, |x, y| image::Rgb([(x / 4) as u8, (y / 4) as u8, ((x + y) / 8) as u8]));
    let fitted = fit_image(&picture, (16, 16));
    let exact = image::imageops::resize(&picture, 16, 16, image::imageops::FilterType::Lanczos3);
    for (ours, lanczos) in fitted.pixels().zip(exact.pixels()) {
        for (a, b) in ours.0.iter().zip(lanczos.0) {
            assert!(a.abs_diff(b) <= 2, "{ours:?} vs {lanczos:?}");
        }
    }
    // A fine checkerboard averages to grey instead of aliasing.
    let board = image::GrayImage::from_fn(640, 640, |x, y| image::Luma([if (x + y) % 2 == 0 { 255 } else { 0 }]));
    assert!(fit_image(&board, (16, 16)).pixels().all(|p| (126..=129).contains(&p.0[0])));
}
