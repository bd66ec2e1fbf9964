//! Downloading the committed tiny pipeline from a fake hub into `huggingface_hub`'s cache layout,
//! then loading it offline.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::backend::NdArray;
use vq_pipeline::hub::{pipeline_files, resolve_pipeline_dir};
use vq_pipeline::{GenerateRequest, LoadOptions, NoiseSource, VQDiffusionPipeline};

use crate::mock::{FakeHub, Sandbox, Server, REPO, SHA};

fn serve(hub: &Arc<FakeHub>) -> Server {
    let hub = hub.clone();
    Server::start(move |request| hub.answer(request))
}

#[test]
fn a_pipeline_downloads_into_the_python_layout_and_loads_offline() {
    let hub = Arc::new(FakeHub::tiny());
    let server = serve(&hub);
    let sandbox = Sandbox::new("tiny");
    let mut options = sandbox.options(&server.url);
    options.token = Some("hf_test".into());

    let dir = resolve_pipeline_dir(REPO, None, &options).expect("download");
    sandbox.assert_contained();
    let root = sandbox.cache().join("models--vq-diffusion-rs--tiny-random");
    assert_eq!(dir, root.join("snapshots").join(SHA));
    assert_eq!(std::fs::read_to_string(root.join("refs/main")).unwrap(), SHA, "no newline, as Python writes it");

    // Each wanted file is a relative symlink into blobs/, named by its etag, with the right bytes.
    let listed: Vec<String> = hub.files.iter().map(|(n, _)| n.clone()).collect();
    let wanted = pipeline_files(&listed, None);
    assert!(wanted.len() >= 12, "{wanted:?}");
    for file in &wanted {
        let link = dir.join(file);
        let etag = FakeHub::etag(hub.bytes(file));
        let up = file.split('/').count() + 1;
        let expected: PathBuf = std::iter::repeat_n("..", up).collect::<PathBuf>().join("blobs").join(&etag);
        assert_eq!(std::fs::read_link(&link).unwrap(), expected, "{file}");
        assert_eq!(std::fs::read(&link).unwrap(), hub.bytes(file), "{file}");
    }
    // The fp16 files were not wanted and not fetched.
    assert!(!dir.join("vqvae/diffusion_pytorch_model.fp16.safetensors").exists());
    let mut blobs: Vec<String> = names_in(&root.join("blobs"));
    let mut etags: Vec<String> = wanted.iter().map(|f| FakeHub::etag(hub.bytes(f))).collect();
    blobs.sort();
    etags.sort();
    etags.dedup();
    assert_eq!(blobs, etags, "blobs/ holds the wanted files' etags and nothing else");
    assert!(server.requests().iter().all(|r| r.header("authorization") == Some("Bearer hf_test")));

    // A second resolution asks for the listing only: the files of the commit are cached.
    let before = server.requests().len();
    assert_eq!(resolve_pipeline_dir(REPO, None, &options).unwrap(), dir);
    let again: Vec<_> = server.requests()[before..].iter().map(|r| r.path.clone()).collect();
    assert_eq!(again, [format!("/api/models/{REPO}/revision/main")]);

    // Offline, the downloaded pipeline loads and draws what the fixture folder draws.
    options.offline = true;
    options.endpoint = Some("http://127.0.0.1:9".into());
    let device = Default::default();
    let load = LoadOptions { variant: None, hub: options.clone() };
    let from_hub = VQDiffusionPipeline::<NdArray>::from_pretrained(REPO, &load, &device).expect("offline load");
    assert_eq!(from_hub.dir, dir);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/hub");
    let from_dir = VQDiffusionPipeline::<NdArray>::from_dir(&fixture, None, &device).unwrap();
    let request = GenerateRequest::new(["teddy bear playing in the pool"])
        .with_steps(3)
        .with_noise(NoiseSource::Torch { seed: 0 });
    assert_eq!(from_hub.generate(&request).unwrap().token_ids(), from_dir.generate(&request).unwrap().token_ids());

    // The fp16 variant adds its files to the same snapshot.
    options.offline = false;
    options.endpoint = Some(server.url.clone());
    let before = server.requests().len();
    assert_eq!(resolve_pipeline_dir(REPO, Some("fp16"), &options).unwrap(), dir);
    let fetched: Vec<_> =
        server.requests()[before..].iter().filter(|r| r.method == "GET").map(|r| r.path.clone()).collect();
    assert!(fetched.iter().skip(1).all(|p| p.contains(".fp16.")), "{fetched:?}");
    assert!(dir.join("vqvae/diffusion_pytorch_model.fp16.safetensors").is_file());
    sandbox.assert_contained();
}

#[test]
fn branches_and_commits_are_cached_as_python_caches_them() {
    let hub = Arc::new(FakeHub::small());
    let server = serve(&hub);
    let sandbox = Sandbox::new("refs");
    let root = sandbox.cache().join("models--vq-diffusion-rs--tiny-random");

    // A revision with slashes is one URL segment, and a nested file under refs/.
    let pr = sandbox.options(&server.url).with_revision("refs/pr/1");
    resolve_pipeline_dir(REPO, None, &pr).unwrap();
    assert_eq!(std::fs::read_to_string(root.join("refs/refs/pr/1")).unwrap(), SHA);
    assert!(server.requests()[0].path.ends_with("/revision/refs%2Fpr%2F1"), "{:?}", server.requests()[0]);

    // A commit hash gets no ref file.
    let by_commit = sandbox.options(&server.url).with_revision(SHA);
    resolve_pipeline_dir(REPO, None, &by_commit).unwrap();
    assert_eq!(names_in(&root.join("refs")), ["refs"]);
    sandbox.assert_contained();
}

fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}
