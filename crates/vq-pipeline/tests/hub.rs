//! Resolving models through the shared Hugging Face cache, offline, in the cache's real layout.

use std::path::{Path, PathBuf};

use vq_pipeline::hub::{pipeline_files, resolve_pipeline_dir, HubError, HubOptions};

/// The file list of microsoft/vq-diffusion-ithq (main).
const ITHQ: &[&str] = &[
    ".gitattributes", "README.md", "model_index.json",
    "learned_classifier_free_sampling_embeddings/config.json",
    "learned_classifier_free_sampling_embeddings/diffusion_pytorch_model.bin",
    "learned_classifier_free_sampling_embeddings/diffusion_pytorch_model.fp16.bin",
    "learned_classifier_free_sampling_embeddings/diffusion_pytorch_model.fp16.safetensors",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json", "text_encoder/pytorch_model.bin", "text_encoder/pytorch_model.fp16.bin",
    "text_encoder/model.fp16.safetensors",
    "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
    "transformer/config.json", "transformer/diffusion_pytorch_model.bin",
    "vqvae/config.json", "vqvae/diffusion_pytorch_model.bin", "vqvae/diffusion_pytorch_model.fp16.bin",
    "vqvae/diffusion_pytorch_model.fp16.safetensors",
];

fn ithq() -> Vec<String> {
    ITHQ.iter().map(|s| s.to_string()).collect()
}

#[test]
fn selects_one_weights_file_per_component() {
    let mut files = pipeline_files(&ithq(), None);
    files.sort();
    let weights: Vec<_> = files.iter().filter(|f| f.contains("model.")).cloned().collect();
    assert_eq!(weights, [
        "learned_classifier_free_sampling_embeddings/diffusion_pytorch_model.bin",
        "text_encoder/pytorch_model.bin",
        "transformer/diffusion_pytorch_model.bin",
        "vqvae/diffusion_pytorch_model.bin",
    ]);
    assert!(files.contains(&"tokenizer/vocab.json".to_string()));
    assert!(files.contains(&"scheduler/scheduler_config.json".to_string()));
    assert!(!files.contains(&"README.md".to_string()));
    // A repository with this project's sampling defaults gets them fetched too.
    let with_defaults: Vec<String> = ithq().into_iter().chain(["sampling_defaults.json".to_string()]).collect();
    assert!(pipeline_files(&with_defaults, None).contains(&"sampling_defaults.json".to_string()));
    assert!(!files.contains(&"sampling_defaults.json".to_string()));

    let mut fp16 = pipeline_files(&ithq(), Some("fp16"));
    fp16.sort();
    let weights: Vec<_> = fp16.iter().filter(|f| f.contains("model.")).cloned().collect();
    // The transformer has no fp16 file on main: it falls back to the fp32 pickle.
    assert_eq!(weights, [
        "learned_classifier_free_sampling_embeddings/diffusion_pytorch_model.fp16.safetensors",
        "text_encoder/model.fp16.safetensors",
        "transformer/diffusion_pytorch_model.bin",
        "vqvae/diffusion_pytorch_model.fp16.safetensors",
    ]);
}

/// Writes `files` into `cache` as huggingface_hub does: content-addressed blobs, a ref naming
/// the commit, and a snapshot of relative symlinks.
fn build_cache<C: AsRef<[u8]>>(cache: &Path, repo: &str, commit: &str, files: &[(&str, C)]) -> PathBuf {
    let root = cache.join(format!("models--{}", repo.replace('/', "--")));
    std::fs::create_dir_all(root.join("blobs")).unwrap();
    std::fs::create_dir_all(root.join("refs")).unwrap();
    std::fs::write(root.join("refs/main"), commit).unwrap();
    let snapshot = root.join("snapshots").join(commit);
    for (i, (name, content)) in files.iter().enumerate() {
        let blob = format!("blob{i:04}");
        std::fs::write(root.join("blobs").join(&blob), content.as_ref()).unwrap();
        let link = snapshot.join(name);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        let depth = name.matches('/').count() + 2;
        let target: PathBuf = std::iter::repeat("..").take(depth).collect::<PathBuf>().join("blobs").join(&blob);
        std::os::unix::fs::symlink(target, &link).unwrap();
    }
    snapshot
}

fn offline(cache: &Path) -> HubOptions {
    HubOptions::from_vars(|k| match k {
        "HF_HUB_CACHE" => Some(cache.to_string_lossy().into_owned()),
        "HF_HUB_OFFLINE" => Some("1".into()),
        _ => None,
    })
}

#[test]
fn offline_resolution_reads_the_cache_snapshot() {
    let cache = std::env::temp_dir().join(format!("vq-hub-cache-{}", std::process::id()));
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snapshot = build_cache(&cache, "microsoft/vq-diffusion-ithq", commit, &[
        ("model_index.json", "{}"),
        ("scheduler/scheduler_config.json", "{\"num_vec_classes\": 32}"),
    ]);
    let dir = resolve_pipeline_dir("microsoft/vq-diffusion-ithq", None, &offline(&cache)).unwrap();
    assert_eq!(dir, snapshot);
    let config = std::fs::read_to_string(dir.join("scheduler/scheduler_config.json")).unwrap();
    assert_eq!(config, "{\"num_vec_classes\": 32}");

    let err = resolve_pipeline_dir("microsoft/other", None, &offline(&cache)).unwrap_err();
    assert!(matches!(err, HubError::NotCached { .. }), "{err}");
    assert!(err.to_string().contains("HF_HUB_OFFLINE"), "{err}");
}

/// Every file of a folder, as (path relative to it, bytes).
fn files_below(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.extend(files_below(&path).into_iter().map(|(p, b)| (format!("{name}/{p}"), b)));
        } else {
            files.push((path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()));
        }
    }
    files
}

#[test]
fn a_whole_pipeline_loads_and_generates_from_the_cache_offline() {
    use burn::backend::NdArray;
    use vq_pipeline::{GenerateRequest, LoadOptions, NoiseSource, VQDiffusionPipeline};

    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/hub");
    let files = files_below(&fixture);
    let named: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let cache = std::env::temp_dir().join(format!("vq-hub-pipeline-{}", std::process::id()));
    let commit = "89abcdef0123456789abcdef0123456789abcdef";
    let snapshot = build_cache(&cache, "vq-diffusion-rs/tiny-random", commit, &named);

    let options = LoadOptions { variant: None, hub: offline(&cache) };
    let device = Default::default();
    let from_hub = VQDiffusionPipeline::<NdArray>::from_pretrained("vq-diffusion-rs/tiny-random", &options, &device).unwrap();
    assert_eq!(from_hub.dir, snapshot);
    let from_dir = VQDiffusionPipeline::<NdArray>::from_dir(&fixture, None, &device).unwrap();
    let request = GenerateRequest::new(["teddy bear playing in the pool"]).with_steps(3).with_noise(NoiseSource::Torch { seed: 0 });
    assert_eq!(from_hub.generate(&request).unwrap().token_ids(), from_dir.generate(&request).unwrap().token_ids());

    // The fp16 variant files of the hub layout are picked on request.
    let fp16 = LoadOptions { variant: Some("fp16".into()), hub: offline(&cache) };
    VQDiffusionPipeline::<NdArray>::from_pretrained("vq-diffusion-rs/tiny-random", &fp16, &device).unwrap();
}

#[test]
fn a_local_folder_wins_and_nonsense_is_rejected() {
    let dir = std::env::temp_dir();
    let opts = offline(&dir);
    assert_eq!(resolve_pipeline_dir(dir.to_str().unwrap(), None, &opts).unwrap(), dir);
    let err = resolve_pipeline_dir("no/such/folder", None, &opts).unwrap_err();
    assert!(matches!(err, HubError::NotAModel(_)), "{err}");
}

#[test]
fn environment_follows_huggingface_hub() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        HubOptions::from_vars(move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    };
    let o = vars(&[("HOME", "/home/u")]);
    assert_eq!(o.cache_dir, PathBuf::from("/home/u/.cache/huggingface/hub"));
    assert!(!o.offline);
    assert_eq!(vars(&[("HF_HOME", "/data/hf")]).cache_dir, PathBuf::from("/data/hf/hub"));
    assert_eq!(vars(&[("HF_HOME", "/data/hf"), ("HF_HUB_CACHE", "/c")]).cache_dir, PathBuf::from("/c"));
    assert!(vars(&[("HF_HUB_OFFLINE", "true")]).offline);
    assert!(!vars(&[("HF_HUB_OFFLINE", "0")]).offline);
    assert_eq!(vars(&[("HF_TOKEN", " hf_x \n")]).token.as_deref(), Some("hf_x"));
}

#[test]
fn an_unreachable_hub_is_a_download_error() {
    let cache = std::env::temp_dir().join(format!("vq-hub-empty-{}", std::process::id()));
    let mut opts = offline(&cache);
    opts.offline = false;
    opts.endpoint = Some("http://127.0.0.1:9".into());
    let err = resolve_pipeline_dir("microsoft/vq-diffusion-ithq", None, &opts).unwrap_err();
    assert!(matches!(err, HubError::Download { .. }), "{err}");
}
