//! Layer arithmetic with exact small values (expected numbers from torch 2.15 where noted).

use burn::module::Param;
use burn::tensor::{Int, Tensor, TensorData};
use vq_model::norm::{group_norm, group_norm_config};
use vq_model::{
    argmin_first, euclidean_distances, to_rgb8, to_unit_range, upsample_nearest_2x, Downsample2dConfig,
    VectorQuantizerConfig,
};

use crate::common::{max_abs_diff, values, B};

fn tensor<const D: usize>(values: &[f32], shape: [usize; D]) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), &Default::default())
}

fn arange_f32<const D: usize>(shape: [usize; D]) -> Tensor<B, D> {
    let n = shape.iter().product::<usize>();
    tensor(&(0..n).map(|i| i as f32).collect::<Vec<_>>(), shape)
}

#[test]
fn nearest_upsample_repeats_each_pixel_2x2() {
    // F.interpolate(x, scale_factor=2, mode="nearest") of [[1, 2, 3], [4, 5, 6]].
    let x = tensor(&[1., 2., 3., 4., 5., 6.], [1, 1, 2, 3]);
    let y = upsample_nearest_2x(x);
    assert_eq!(y.dims(), [1, 1, 4, 6]);
    #[rustfmt::skip]
    let expected = [
        1., 1., 2., 2., 3., 3.,
        1., 1., 2., 2., 3., 3.,
        4., 4., 5., 5., 6., 6.,
        4., 4., 5., 5., 6., 6.,
    ];
    assert_eq!(values(y), expected);
}

/// The upsampling's gradient is the output gradient summed over each 2 × 2 block (what torch's
/// nearest `interpolate` backward gives).
#[test]
fn nearest_upsample_gradient_sums_each_block() {
    type A = burn::backend::Autodiff<B>;
    let device = Default::default();
    let x = Tensor::<A, 4>::from_data(TensorData::new(vec![0.0_f32; 6], [1, 1, 2, 3]), &device).require_grad();
    let g: Vec<f32> = (0..24).map(|i| (i * i % 7) as f32).collect();
    let g = Tensor::<A, 4>::from_data(TensorData::new(g, [1, 1, 4, 6]), &device);
    let grads = (upsample_nearest_2x(x.clone()) * g.clone()).sum().backward();
    let got = x.grad(&grads).expect("x takes part").into_data().into_vec::<f32>().unwrap();
    let g = g.into_data().into_vec::<f32>().unwrap();
    let block = |y: usize, x: usize| {
        [(0, 0), (0, 1), (1, 0), (1, 1)].iter().map(|(dy, dx)| g[(2 * y + dy) * 6 + 2 * x + dx]).sum::<f32>()
    };
    let want: Vec<f32> = (0..2).flat_map(|y| (0..3).map(move |x| (y, x))).map(|(y, x)| block(y, x)).collect();
    assert_eq!(got, want);
}

#[test]
fn downsample_pads_only_right_and_bottom() {
    // conv2d(F.pad(x, (0, 1, 0, 1)), k = [[1..3], [4..6], [7..9]], bias 0.5, stride 2) in torch,
    // x = arange(n²) as n×n, for n = 4 and 5.
    let mut down = Downsample2dConfig::new(1).init::<B>(&Default::default());
    down.conv.weight = Param::from_tensor(tensor(&[1., 2., 3., 4., 5., 6., 7., 8., 9.], [1, 1, 3, 3]));
    down.conv.bias = Some(Param::from_tensor(tensor(&[0.5], [1])));
    let y = down.forward(arange_f32([1, 1, 4, 4]));
    assert_eq!(y.dims(), [1, 1, 2, 2]);
    assert_eq!(values(y), [303.5, 225.5, 253.5, 163.5]);
    let y = down.forward(arange_f32([1, 1, 5, 5]));
    assert_eq!(y.dims(), [1, 1, 2, 2]);
    assert_eq!(values(y), [366.5, 456.5, 816.5, 906.5]);
}

#[test]
fn group_norm_uses_eps_1e_6() {
    // torch.nn.GroupNorm(2, 4, eps=1e-6), weight [1, 2, 3, 4], bias [0, 0.5, -0.5, 1]; the second
    // group has variance 7.5e-7, so the epsilon matters (eps 1e-5 gives -0.957, -0.957, 0.390, 2.830).
    let mut norm = group_norm_config(2, 4).init::<B>(&Default::default());
    norm.gamma = Some(Param::from_tensor(tensor(&[1., 2., 3., 4.], [4])));
    norm.beta = Some(Param::from_tensor(tensor(&[0., 0.5, -0.5, 1.], [4])));
    let x = tensor(&[0.1, 0.2, 0.3, 0.4, 0.0, 0.0, 0.0, 0.002], [1, 4, 2, 1]);
    let expected = tensor(
        &[-1.341587, -0.44719565, 1.3943915, 3.1831741, -1.6338935, -1.6338935, -0.511858, 5.535574],
        [1, 4, 2, 1],
    );
    let diff = max_abs_diff(group_norm(&norm, x), expected);
    assert!(diff <= 1e-6, "max |diff| {diff}");
}

#[test]
fn argmin_takes_the_first_of_equal_minima() {
    let d = tensor(&[1.0, 0.5, 0.5, 2.0, 2.0, 2.0, 3.0, 1.0, 0.0], [3, 3]);
    let indices: Vec<i64> = argmin_first(d).into_data().to_vec().unwrap();
    assert_eq!(indices, [1, 0, 2]);
}

#[test]
fn distances_are_euclidean_on_both_cdist_paths() {
    // Direct path (≤ 25 rows on both sides): exact on a 3-4-5 lattice.
    let x = tensor(&[0., 0., 3., 4.], [2, 2]);
    let e = tensor(&[3., 0., 0., 4., 3., 4.], [3, 2]);
    assert_eq!(values(euclidean_distances(x, e)), [3., 4., 5., 4., 3., 0.]);
    // Matrix-product path (30 codes): integer coordinates keep every term exact.
    let codes: Vec<f32> = (0..30).flat_map(|i| [(i % 6) as f32, (i / 6) as f32]).collect();
    let x = tensor(&[0., 0., 3., 4.], [2, 2]);
    let d = values(euclidean_distances(x, tensor(&codes, [30, 2])));
    for (i, pair) in codes.chunks(2).enumerate() {
        let (cx, cy) = (pair[0], pair[1]);
        assert_eq!(d[i], (cx * cx + cy * cy).sqrt(), "code {i}");
        assert_eq!(d[30 + i], ((cx - 3.) * (cx - 3.) + (cy - 4.) * (cy - 4.)).sqrt(), "code {i}");
    }
}

#[test]
fn quantizer_picks_nearest_code_first_on_duplicates_and_reports_commit_loss() {
    let device = Default::default();
    let mut quantizer = VectorQuantizerConfig::new(30, 2).init::<B>(&device);
    // Codes on a 6×5 lattice, code 17 duplicated as code 29.
    let mut codes: Vec<f32> = (0..30).flat_map(|i| [(i % 6) as f32, (i / 6) as f32]).collect();
    codes[58] = codes[34];
    codes[59] = codes[35];
    quantizer.embedding.weight = Param::from_tensor(tensor(&codes, [30, 2]));
    // Latents [1, 2, 1, 3] (NCHW): points (5, 2) = code 17 = code 29, (0.1, 0.2) → code 0,
    // (2.6, 3.4) → code 21 = (3, 3).
    let z = tensor(&[5.0, 0.1, 2.6, 2.0, 0.2, 3.4], [1, 2, 1, 3]);
    let out = quantizer.forward(z);
    let indices: Vec<i64> = out.indices.into_data().to_vec().unwrap();
    assert_eq!(indices, [17, 0, 21]);
    let quantized = values(out.quantized);
    let expected = [5.0, 0.0, 3.0, 2.0, 0.0, 3.0];
    assert!(quantized.iter().zip(expected).all(|(q, e)| (q - e).abs() <= 1e-6), "{quantized:?}");
    // Legacy loss: (1 + 0.25) · mean of squared differences over 6 values.
    let sq = [0.0f32, 0.1 * 0.1, 0.4 * 0.4, 0.0, 0.2 * 0.2, 0.4 * 0.4];
    let expected_loss = 1.25 * sq.iter().sum::<f32>() / 6.0;
    let loss = values(out.commit_loss)[0];
    assert!((loss - expected_loss).abs() <= 1e-6, "{loss} vs {expected_loss}");
}

#[test]
fn codebook_lookup_is_row_major_nchw() {
    let device = Default::default();
    let mut quantizer = VectorQuantizerConfig::new(4, 2).init::<B>(&device);
    quantizer.embedding.weight = Param::from_tensor(tensor(&[0., 1., 10., 11., 20., 21., 30., 31.], [4, 2]));
    let indices = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![3i64, 0, 2, 1, 1, 1], [1, 6]), &device);
    let codes = quantizer.get_codebook_entry(indices, [1, 2, 3, 2]);
    assert_eq!(codes.dims(), [1, 2, 2, 3]);
    // Channel 0 then channel 1, each a 2×3 map of the codes [[3, 0, 2], [1, 1, 1]].
    assert_eq!(values(codes), [30., 0., 20., 10., 10., 10., 31., 1., 21., 11., 11., 11.]);
}

#[test]
fn postprocessing_matches_the_pipeline() {
    // (x / 2 + 0.5).clamp(0, 1), NCHW → NHWC.
    let decoded = tensor(&[-3.0, -1.0, 0.0, 0.5, 1.0, 2.0], [1, 3, 1, 2]);
    let unit = to_unit_range(decoded);
    assert_eq!(unit.dims(), [1, 1, 2, 3]);
    assert_eq!(values(unit), [0.0, 0.5, 1.0, 0.0, 0.75, 1.0]);
    // np.round(np.float32(x) * 255) rounds exact halves to even: these products are exactly
    // 0.5, 1.5, 2.5, 3.5, 126.5, 200.5 in f32.
    let halves = tensor(&[0.0019607844, 0.005882353, 0.009803922, 0.01372549, 0.49607843, 0.7862745], [1, 1, 2, 3]);
    let rgb = to_rgb8(halves);
    assert_eq!(rgb.shape.as_slice(), &[1, 1, 2, 3]);
    assert_eq!(rgb.to_vec::<u8>().unwrap(), [0, 2, 2, 4, 126, 200]);
    // Just below a half rounds down, the ends map to 0 and 255.
    let rgb = to_rgb8(tensor(&[0.009803921, 0.0, 1.0], [1, 1, 1, 3]));
    assert_eq!(rgb.to_vec::<u8>().unwrap(), [2, 0, 255]);
}
