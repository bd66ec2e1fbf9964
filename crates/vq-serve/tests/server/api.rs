//! The endpoints over HTTP: answers, images and their metadata, errors, the API key, streaming.

use vq_pipeline::{GenerateRequest, NoiseSource, RevealOrder, Sampler};
use vq_serve::ServeConfig;

use crate::common::{alone, engine, pipeline, read_events, Png, TestServer};

#[test]
fn health_models_metrics_and_the_page() {
    let server = TestServer::start(ServeConfig::default(), engine());
    let health = server.get("/healthz");
    assert_eq!((health.status, health.json()), (200, serde_json::json!({ "status": "ok" })));

    let models = server.get("/v1/models").json();
    let model = &models["data"][0];
    assert_eq!(models["object"], "list");
    assert_eq!(model["id"], "tiny");
    assert_eq!(model["object"], "model");
    assert_eq!(model["size"], "16x16", "8×8 tokens, a VQ-VAE of two blocks");
    assert_eq!(model["num_train_timesteps"], 100);
    assert_eq!(model["defaults"]["steps"], 100);
    assert_eq!(model["defaults"]["guidance_scale"], 5.0, "no sampling_defaults.json: diffusers' 5");
    assert_eq!(model["defaults"]["truncation_rate"], 1.0);
    assert_eq!(model["limits"]["n"], 10);
    assert_eq!(model["limits"]["max_batch"], 8);

    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.content_type.starts_with("text/plain; version=0.0.4"), "{}", metrics.content_type);
    for series in ["vq_queue_depth 0", "vq_queue_capacity 32", "vq_images_total 0", "vq_batch_images_count 0"] {
        assert!(metrics.body.lines().any(|l| l == series), "{series} missing from\n{}", metrics.body);
    }

    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"), "{}", page.content_type);
    for part in ["<textarea id=\"prompt\"", "<progress id=\"progress\"", "id=\"gallery\"", "/v1/images/generations"] {
        assert!(page.body.contains(part), "the page lacks {part}");
    }
    for remote in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!page.body.contains(remote), "the page loads something from elsewhere: {remote}");
    }
    server.get("/nowhere").assert_error(404, None, "no endpoint GET /nowhere");
    server.get("/v1/images/generations").assert_error(405, None, "GET is not allowed");
}

#[test]
fn images_equal_the_pipeline_s_and_carry_the_command_line_s_metadata() {
    let server = TestServer::start(ServeConfig::default(), engine());
    let pipeline = pipeline();
    let reply = server.generate(r#"{"prompt": "a red car", "n": 2, "seed": 4294967301, "steps": 5, "size": "16x16"}"#);
    let created = reply.json()["created"].as_u64().expect("created");
    assert!(created.abs_diff(vq_serve::api::unix_time()) < 600, "created is a Unix time: {created}");
    let images = reply.images();
    let request = GenerateRequest::new(["a red car"])
        .with_steps(5)
        .with_images_per_prompt(2)
        .with_noise(NoiseSource::Torch { seed: 4294967301 });
    let expected = alone(&pipeline, &request);
    assert_eq!(images.iter().map(|png| png.image.clone()).collect::<Vec<_>>(), expected);
    let version = format!("vq-diffusion {}", env!("CARGO_PKG_VERSION"));
    for (index, png) in images.iter().enumerate() {
        assert_eq!(png.seed, 4294967301);
        let index = index.to_string();
        let text: Vec<(&str, &str)> = png.text.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            text,
            [
                ("prompt", "a red car"),
                ("seed", "4294967301"),
                ("rng", "torch"),
                ("steps", "5"),
                ("guidance_scale", "5"),
                ("truncation_rate", "1"),
                ("truncation_mode", "exact"),
                ("sampler", "posterior"),
                ("model", "tiny"),
                ("backend", "flex"),
                ("dtype", "f32"),
                ("software", version.as_str()),
                ("batch_index", index.as_str()),
                ("seed_per_image", "false"),
                ("num_images_per_prompt", "2"),
                ("prompts", r#"["a red car"]"#),
            ]
        );
    }

    // The purity sampler with its weight, and settings other than the model's defaults.
    let reply = server.generate(
        r#"{"prompt": "a cat", "seed": 3, "steps": 4, "guidance_scale": 2.5, "truncation_rate": 0.8,
            "sampler": "purity", "purity_weight": 0.5}"#,
    );
    let request = GenerateRequest::new(["a cat"])
        .with_steps(4)
        .with_guidance_scale(2.5)
        .with_truncation_rate(0.8)
        .with_sampler(Sampler::Reveal(RevealOrder::Purity { weight: 0.5 }))
        .with_noise(NoiseSource::Torch { seed: 3 });
    let png = &reply.images()[0];
    assert_eq!(vec![png.image.clone()], alone(&pipeline, &request));
    assert!(png.text.contains(&("purity_weight".into(), "0.5".into())), "{:?}", png.text);

    // Without a seed, one is drawn and returned; it reproduces the images.
    let drawn = server.generate(r#"{"prompt": "a cat", "steps": 3}"#).images();
    let seed = drawn[0].seed;
    let again = server.generate(&format!(r#"{{"prompt": "a cat", "steps": 3, "seed": {seed}}}"#)).images();
    assert_eq!(drawn, again);
    assert_eq!(server.metric("vq_images_total"), 5.0);
    assert_eq!(server.metric("vq_requests_total{outcome=\"ok\"}"), 4.0);
}

#[test]
fn bad_requests_get_a_4xx_naming_the_field_and_the_server_keeps_serving() {
    let server = TestServer::start(ServeConfig::default(), engine());
    let long_prompt = format!(r#"{{"prompt": "{}"}}"#, "x".repeat(1001));
    let huge = format!(r#"{{"prompt": "{}"}}"#, "x".repeat(70_000));
    let cases: Vec<(&str, u16, Option<&str>, &str)> = vec![
        ("{\"prompt\": ", 400, Some("body"), "EOF"),
        ("not json", 400, Some("body"), "not a JSON object"),
        ("", 400, Some("body"), "empty"),
        (r#"{"prompt": "a", "colour": "red"}"#, 400, Some("colour"), "unknown field"),
        (r#"{"n": 2}"#, 400, Some("prompt"), "missing"),
        (r#"{"prompt": "a", "n": 0}"#, 400, Some("n"), "0 is outside 1..=10"),
        (r#"{"prompt": "a", "n": 11}"#, 400, Some("n"), "11 is outside 1..=10"),
        (r#"{"prompt": "a", "n": "two"}"#, 400, Some("n"), "invalid type"),
        (r#"{"prompt": "a", "steps": 0}"#, 400, Some("steps"), "0 is outside 1..=100"),
        (r#"{"prompt": "a", "steps": 101}"#, 400, Some("steps"), "101 is outside 1..=100"),
        (long_prompt.as_str(), 400, Some("prompt"), "1001 characters long"),
        (r#"{"prompt": "a", "size": "1024x1024"}"#, 400, Some("size"), "this model makes 16x16 images"),
        (r#"{"prompt": "a", "response_format": "url"}"#, 400, Some("response_format"), "use \"b64_json\""),
        (huge.as_str(), 413, Some("body"), "larger than 65536 bytes"),
    ];
    for (body, status, param, words) in &cases {
        server.generate(body).assert_error(*status, *param, words);
    }
    assert_eq!(server.metric("vq_requests_total{outcome=\"invalid\"}"), cases.len() as f64);
    // The worker never saw them, and serves the next request.
    assert_eq!(server.generate(r#"{"prompt": "a", "steps": 2}"#).images().len(), 1);
}

#[test]
fn an_api_key_guards_every_endpoint_but_healthz() {
    let config = ServeConfig { api_key: Some("s3cret".into()), ..ServeConfig::default() };
    let server = TestServer::start(config, engine());
    assert_eq!(server.get("/healthz").status, 200);
    for path in ["/", "/v1/models", "/metrics", "/nowhere"] {
        let reply = server.get(path);
        reply.assert_error(401, None, "Authorization: Bearer");
        assert_eq!(reply.www_authenticate.as_deref(), Some("Bearer"));
        server.get_with_key(path, "wrong").assert_error(401, None, "API key");
        assert_ne!(server.get_with_key(path, "s3cret").status, 401, "{path}");
    }
    server.generate(r#"{"prompt": "a", "steps": 2}"#).assert_error(401, None, "API key");
    let request = server.post_request().set("Authorization", "Bearer s3cret");
    let response = request.send_string(r#"{"prompt": "a", "steps": 2}"#).expect("authorised");
    assert_eq!(response.status(), 200);
}

#[test]
fn streaming_reports_the_steps_then_the_result() {
    let server = TestServer::start(ServeConfig::default(), engine());
    let body = r#"{"prompt": "a red car", "seed": 11, "steps": 6, "stream": true}"#;
    let response = server.post_request().send_string(body).expect("accepted");
    assert_eq!(response.header("Content-Type"), Some("text/event-stream"));
    let events = read_events(response.into_reader());
    let (last, progress) = events.split_last().expect("events");
    assert_eq!(last.0, "result", "{events:?}");
    let steps: Vec<u64> = progress
        .iter()
        .map(|(name, data)| {
            assert_eq!((name.as_str(), data["total"].as_u64()), ("progress", Some(6)));
            data["step"].as_u64().expect("step")
        })
        .collect();
    assert_eq!(steps[0], 0, "the first event says the request was admitted");
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "steps only move forward: {steps:?}");
    let streamed: Vec<Png> = last.1["data"].as_array().expect("data").iter().map(Png::of).collect();
    let plain = server.generate(r#"{"prompt": "a red car", "seed": 11, "steps": 6}"#).images();
    assert_eq!(streamed, plain);

    // Errors found before admission are plain JSON answers, not streams.
    let reply = server.generate(r#"{"prompt": "a", "steps": 0, "stream": true}"#);
    reply.assert_error(400, Some("steps"), "outside");
}
