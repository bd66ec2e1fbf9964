//! Resolving models through the shared Hugging Face cache, offline, in the cache's real layout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vq_pipeline::hub::{pipeline_files, resolve_pipeline_dir, HubError, HubOptions, NameKind};

use crate::common::{build_cache, files_below, offline};

/// The file list of microsoft/vq-diffusion-ithq (main).
const ITHQ: &[&str] = &[
    ".gitattributes",
    "README.md",
    "model_index.json",
    "learned_classifier_free_sampling_embeddings/config.json",
    "learned_classifier_free_sampling_embeddings/diffusion_pytorch_model.bin",
    "learned_classifier_free_sampling_embeddings/diffusion_pytorch_model.fp16.bin",
    "learned_classifier_free_sampling_embeddings/diffusion_pytorch_model.fp16.safetensors",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder/pytorch_model.bin",
    "text_encoder/pytorch_model.fp16.bin",
    "text_encoder/model.fp16.safetensors",
    "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "transformer/config.json",
    "transformer/diffusion_pytorch_model.bin",
    "vqvae/config.json",
    "vqvae/diffusion_pytorch_model.bin",
    "vqvae/diffusion_pytorch_model.fp16.bin",
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
    assert_eq!(
        weights,
        [
            "learned_classifier_free_sampling_embeddings/diffusion_pytorch_model.bin",
            "text_encoder/pytorch_model.bin",
            "transformer/diffusion_pytorch_model.bin",
            "vqvae/diffusion_pytorch_model.bin",
        ]
    );
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
    assert_eq!(
        weights,
        [
            "learned_classifier_free_sampling_embeddings/diffusion_pytorch_model.fp16.safetensors",
            "text_encoder/model.fp16.safetensors",
            "transformer/diffusion_pytorch_model.bin",
            "vqvae/diffusion_pytorch_model.fp16.safetensors",
        ]
    );
}

#[test]
fn offline_resolution_reads_the_cache_snapshot() {
    let cache = std::env::temp_dir().join(format!("vq-hub-cache-{}", std::process::id()));
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snapshot = build_cache(
        &cache,
        "microsoft/vq-diffusion-ithq",
        commit,
        &[("model_index.json", "{}"), ("scheduler/scheduler_config.json", "{\"num_vec_classes\": 32}")],
    );
    let dir = resolve_pipeline_dir("microsoft/vq-diffusion-ithq", None, &offline(&cache)).unwrap();
    assert_eq!(dir, snapshot);
    let config = std::fs::read_to_string(dir.join("scheduler/scheduler_config.json")).unwrap();
    assert_eq!(config, "{\"num_vec_classes\": 32}");

    let err = resolve_pipeline_dir("microsoft/other", None, &offline(&cache)).unwrap_err();
    assert!(matches!(err, HubError::NotCached { .. }), "{err}");
    assert!(err.to_string().contains("HF_HUB_OFFLINE"), "{err}");

    // A commit hash needs no ref; an unknown revision has none.
    let by_commit = offline(&cache).with_revision(commit);
    assert_eq!(resolve_pipeline_dir("microsoft/vq-diffusion-ithq", None, &by_commit).unwrap(), snapshot);
    let other = offline(&cache).with_revision("v2");
    let err = resolve_pipeline_dir("microsoft/vq-diffusion-ithq", None, &other).unwrap_err();
    assert!(matches!(&err, HubError::NotCached { missing, .. } if missing.contains("no ref")), "{err}");

    // A ref file whose content is not a commit hash does not become a path.
    let root = cache.join("models--microsoft--vq-diffusion-ithq");
    std::fs::write(root.join("refs/main"), "../../../../etc\n").unwrap();
    let err = resolve_pipeline_dir("microsoft/vq-diffusion-ithq", None, &offline(&cache)).unwrap_err();
    assert!(
        matches!(&err, HubError::UnsafeName { kind: NameKind::Commit, value, .. } if value == "../../../../etc"),
        "{err}"
    );
    assert!(err.to_string().contains("refs/main"), "names the ref file: {err}");
    // A revision that would climb out of refs/ is refused before it is read.
    let climbing = offline(&cache).with_revision("../../../x");
    let err = resolve_pipeline_dir("microsoft/vq-diffusion-ithq", None, &climbing).unwrap_err();
    assert!(matches!(err, HubError::UnsafeName { kind: NameKind::Revision, .. }), "{err}");
    let _ = std::fs::remove_dir_all(&cache);
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
    let from_hub =
        VQDiffusionPipeline::<NdArray>::from_pretrained("vq-diffusion-rs/tiny-random", &options, &device).unwrap();
    assert_eq!(from_hub.dir, snapshot);
    let from_dir = VQDiffusionPipeline::<NdArray>::from_dir(&fixture, None, &device).unwrap();
    let request = GenerateRequest::new(["teddy bear playing in the pool"])
        .with_steps(3)
        .with_noise(NoiseSource::Torch { seed: 0 });
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
    assert_eq!(o.stall_timeout, Duration::from_secs(10), "huggingface_hub's default");
    assert_eq!(o.connect_timeout, Duration::from_secs(10));
    let slow = vars(&[("HF_HUB_DOWNLOAD_TIMEOUT", "2.5")]);
    assert_eq!((slow.connect_timeout, slow.stall_timeout), (Duration::from_millis(2500), Duration::from_millis(2500)));
    for ignored in ["0", "-1", "soon", "NaN"] {
        let o = HubOptions::from_vars(|k| (k == "HF_HUB_DOWNLOAD_TIMEOUT").then(|| ignored.to_string()));
        assert_eq!(o.stall_timeout, Duration::from_secs(10), "{ignored}");
    }
    assert_eq!(o.max_file_size, 16 << 30);
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
