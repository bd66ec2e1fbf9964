//! Batching and load: which requests share a batch, that each still gets the images it gets
//! alone, and a bounded queue under many clients.

use std::sync::Arc;

use vq_pipeline::{GenerateRequest, NoiseSource, RevealOrder, Sampler};
use vq_serve::ServeConfig;

use crate::common::{alone, engine, pipeline, Probe, TestServer};

/// A request body and the pipeline request it stands for.
fn request(prompt: &str, n: usize, seed: u64, steps: usize, extra: &str) -> (String, GenerateRequest) {
    let body = format!(r#"{{"prompt": "{prompt}", "n": {n}, "seed": {seed}, "steps": {steps}{extra}}}"#);
    let request = GenerateRequest::new([prompt])
        .with_images_per_prompt(n)
        .with_steps(steps)
        .with_noise(NoiseSource::Torch { seed });
    (body, request)
}

#[test]
fn waiting_requests_with_the_same_settings_share_a_batch_and_each_equals_its_run_alone() {
    let (probe, gate, record) = Probe::new(engine(), true);
    let config = ServeConfig { max_batch: 4, ..ServeConfig::default() };
    let server = Arc::new(TestServer::start(config, probe));
    let pipeline = pipeline();

    // The first request holds the worker while the others queue up in a known order.
    let (held, _) = request("held", 1, 0, 3, "");
    let mut clients = vec![{
        let server = server.clone();
        std::thread::spawn(move || server.generate(&held))
    }];
    server.wait_for_metric("vq_running_images", 1.0);
    let reveal = Sampler::Reveal(RevealOrder::Uniform);
    let queued = [
        request("a red circle", 1, 1, 3, ""),
        request("a blue square", 2, 2, 3, ""),
        {
            let (body, request) = request("a green triangle", 1, 3, 3, r#", "sampler": "reveal""#);
            (body, request.with_sampler(reveal))
        },
        request("a yellow star", 1, 4, 4, ""),
        request("a cat", 3, 5, 3, ""),
        {
            let (body, request) = request("a dog", 1, 6, 3, r#", "guidance_scale": 2"#);
            (body, request.with_guidance_scale(2.0))
        },
        request("a car", 1, 7, 4, ""),
    ];
    for (i, (body, _)) in queued.iter().enumerate() {
        let (client, body) = (server.clone(), body.clone());
        clients.push(std::thread::spawn(move || client.generate(&body)));
        server.wait_for_metric("vq_queue_depth", (i + 1) as f64);
    }
    gate.expect("gated").open();

    let replies: Vec<_> = clients.into_iter().map(|client| client.join().expect("client")).collect();
    for ((_, request), reply) in queued.iter().zip(&replies[1..]) {
        let images: Vec<_> = reply.images().into_iter().map(|png| png.image).collect();
        assert_eq!(images, alone(&pipeline, request), "{:?}", request.prompts);
    }
    // At most 4 images a batch, oldest first, only equal settings together: "a cat" (3 images)
    // does not fit beside the circle and the squares and runs on its own.
    let batches = &record.lock().unwrap().batches;
    let expected: Vec<Vec<&str>> = vec![
        vec!["held"],
        vec!["a red circle", "a blue square"],
        vec!["a green triangle"],
        vec!["a yellow star", "a car"],
        vec!["a cat"],
        vec!["a dog"],
    ];
    assert_eq!(batches, &expected);
    assert_eq!(server.metric("vq_batch_images_count"), 6.0);
    assert_eq!(server.metric("vq_images_total"), 11.0);
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let (probe, gate, _) = Probe::new(engine(), true);
    let config = ServeConfig { max_batch: 1, queue: 2, ..ServeConfig::default() };
    let server = Arc::new(TestServer::start(config, probe));
    let body = r#"{"prompt": "a", "steps": 2, "seed": 1}"#;
    let mut clients = Vec::new();
    for waiting in 0..3 {
        let client = server.clone();
        clients.push(std::thread::spawn(move || client.generate(body)));
        match waiting {
            0 => server.wait_for_metric("vq_running_images", 1.0),
            _ => server.wait_for_metric("vq_queue_depth", waiting as f64),
        }
    }
    let refused = server.generate(body);
    refused.assert_error(503, None, "all 2 places of the queue are taken");
    assert_eq!(refused.retry_after.as_deref(), Some("1"), "no batch has finished: one second");
    assert_eq!(server.metric("vq_requests_total{outcome=\"busy\"}"), 1.0);
    gate.expect("gated").open();
    for client in clients {
        assert_eq!(client.join().expect("client").images().len(), 1);
    }
}

/// 64 requests from 16 clients against a queue of 8: each answered with its images or a 503,
/// none lost, none wrong.
#[test]
fn load_of_64_requests_from_16_clients() {
    let config = ServeConfig { max_batch: 4, queue: 8, ..ServeConfig::default() };
    let server = Arc::new(TestServer::start(config, engine()));
    let pipeline = pipeline();
    let kinds: Arc<Vec<(String, GenerateRequest)>> =
        Arc::new((0..4).map(|k| request(&format!("shape {k}"), 1 + k % 2, k as u64, 2, "")).collect());
    let expected: Arc<Vec<_>> = Arc::new(kinds.iter().map(|(_, request)| alone(&pipeline, request)).collect());
    let clients: Vec<_> = (0..16)
        .map(|client| {
            let (server, kinds, expected) = (server.clone(), kinds.clone(), expected.clone());
            std::thread::spawn(move || {
                let (mut answered, mut refused) = (0, 0);
                for i in 0..4 {
                    let kind = (client + i) % kinds.len();
                    let reply = server.generate(&kinds[kind].0);
                    match reply.status {
                        200 => {
                            let images: Vec<_> = reply.images().into_iter().map(|png| png.image).collect();
                            assert_eq!(images, expected[kind], "client {client}, request {i}");
                            answered += 1;
                        }
                        503 => {
                            reply.assert_error(503, None, "queue");
                            assert!(reply.retry_after.is_some(), "a 503 says when to retry");
                            refused += 1;
                        }
                        other => panic!("client {client}, request {i}: status {other}: {}", reply.body),
                    }
                }
                (answered, refused)
            })
        })
        .collect();
    let (answered, refused) = clients
        .into_iter()
        .map(|client| client.join().expect("client"))
        .fold((0, 0), |(a, r), (answered, refused)| (a + answered, r + refused));
    assert_eq!(answered + refused, 64, "every request answered");
    assert_eq!(server.metric("vq_requests_total{outcome=\"ok\"}"), answered as f64);
    assert_eq!(server.metric("vq_requests_total{outcome=\"busy\"}"), refused as f64);
    assert_eq!(server.metric("vq_queue_depth"), 0.0);
    println!("{answered} answered with images, {refused} refused with 503");
}
