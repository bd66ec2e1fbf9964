//! Faults: a panic inside a job, clients that go away (queued, running, streaming), and a
//! shutdown with requests in flight.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use vq_pipeline::{GenerateRequest, NoiseSource};
use vq_serve::ServeConfig;

use crate::common::{alone, engine, pipeline, Probe, TestServer, PANIC_PROMPT};

/// The raw HTTP request of `body` to `/v1/images/generations`.
fn raw_request(body: &str) -> String {
    format!(
        "POST /v1/images/generations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn a_panic_fails_its_request_with_500_and_the_server_keeps_serving() {
    let (probe, gate, record) = Probe::new(engine(), true);
    let server = Arc::new(TestServer::start(ServeConfig::default(), probe));
    let held = {
        let server = server.clone();
        std::thread::spawn(move || server.generate(r#"{"prompt": "held", "steps": 2}"#))
    };
    server.wait_for_metric("vq_running_images", 1.0);
    // A request that panics and a good one with the same settings share a batch.
    let panicking = format!(r#"{{"prompt": "{PANIC_PROMPT}", "steps": 2}}"#);
    let clients: Vec<_> = [panicking.clone(), r#"{"prompt": "a cat", "steps": 2, "seed": 9}"#.to_string()]
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let sender = server.clone();
            let client = std::thread::spawn(move || sender.generate(&body));
            server.wait_for_metric("vq_queue_depth", (i + 1) as f64);
            client
        })
        .collect();
    gate.expect("gated").open();
    assert_eq!(held.join().expect("client").images().len(), 1);
    let [failed, good]: [_; 2] =
        clients.into_iter().map(|client| client.join().expect("client")).collect::<Vec<_>>().try_into().expect("two");
    failed.assert_error(500, None, "internal error (a bug, please report it): a bug in the engine");
    let request = GenerateRequest::new(["a cat"]).with_steps(2).with_noise(NoiseSource::Torch { seed: 9 });
    let images: Vec<_> = good.images().into_iter().map(|png| png.image).collect();
    assert_eq!(images, alone(&pipeline(), &request), "the good request of the batch still gets its images");
    // The batch panicked, then ran job by job.
    let expected: Vec<Vec<&str>> = vec![vec!["held"], vec![PANIC_PROMPT, "a cat"], vec![PANIC_PROMPT], vec!["a cat"]];
    assert_eq!(record.lock().unwrap().batches, expected);

    // Alone, the same; and the server keeps serving.
    server.generate(&panicking).assert_error(500, None, "a bug in the engine");
    assert_eq!(server.generate(r#"{"prompt": "a", "steps": 2}"#).images().len(), 1);
    assert_eq!(server.metric("vq_requests_total{outcome=\"failed\"}"), 2.0);
    assert_eq!(server.metric("vq_requests_total{outcome=\"ok\"}"), 3.0);
}

#[test]
fn a_client_that_goes_away_while_queued_is_never_run() {
    let (probe, gate, record) = Probe::new(engine(), true);
    let server = Arc::new(TestServer::start(ServeConfig::default(), probe));
    let held = {
        let server = server.clone();
        std::thread::spawn(move || server.generate(r#"{"prompt": "held", "steps": 2}"#))
    };
    server.wait_for_metric("vq_running_images", 1.0);
    let address = server.url.trim_start_matches("http://");
    let mut socket = TcpStream::connect(address).expect("connect");
    socket.write_all(raw_request(r#"{"prompt": "gone", "steps": 2}"#).as_bytes()).expect("send");
    server.wait_for_metric("vq_queue_depth", 1.0);
    drop(socket);
    gate.expect("gated").open();
    assert_eq!(held.join().expect("client").images().len(), 1);
    assert_eq!(server.generate(r#"{"prompt": "after", "steps": 2}"#).images().len(), 1);
    assert_eq!(record.lock().unwrap().batches, [vec!["held"], vec!["after"]]);
    assert_eq!(server.metric("vq_requests_total{outcome=\"cancelled\"}"), 1.0);
}

#[test]
fn a_client_that_goes_away_while_its_images_are_made_stops_them() {
    let (probe, _, record) = Probe::new(engine(), false);
    let server = TestServer::start(ServeConfig::default(), probe);
    let address = server.url.trim_start_matches("http://").to_string();
    for (round, body) in
        [r#"{"prompt": "plain", "steps": 100}"#, r#"{"prompt": "streamed", "steps": 100, "stream": true}"#]
            .into_iter()
            .enumerate()
    {
        let mut socket = TcpStream::connect(&address).expect("connect");
        socket.write_all(raw_request(body).as_bytes()).expect("send");
        // Wait until the chain runs, then hang up.
        for _ in 0..2000 {
            if record.lock().unwrap().last_steps >= 1 && record.lock().unwrap().batches.len() == round + 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if body.contains("stream") {
            let mut first = String::new();
            BufReader::new(&socket).read_line(&mut first).expect("the stream's status line");
            assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        }
        drop(socket);
        server.wait_for_metric("vq_requests_total{outcome=\"cancelled\"}", (round + 1) as f64);
        let record = record.lock().unwrap();
        assert!(record.last_cancelled, "{body}: the batch stopped");
        assert!(record.last_steps < 100, "{body}: stopped after {} of 100 steps", record.last_steps);
    }
    assert_eq!(server.metric("vq_images_total"), 0.0);
    assert_eq!(server.generate(r#"{"prompt": "a", "steps": 2}"#).images().len(), 1, "the worker lives on");
}

#[test]
fn shutdown_answers_the_requests_in_flight_then_stops() {
    let (probe, gate, _) = Probe::new(engine(), true);
    let mut server = TestServer::start(ServeConfig::default(), probe);
    let url = server.url.clone();
    let address = url.trim_start_matches("http://").to_string();
    // Different steps: the two cannot share a batch.
    let clients: Vec<_> = [("running", 2), ("queued", 3)]
        .into_iter()
        .map(|(prompt, steps)| {
            let body = format!(r#"{{"prompt": "{prompt}", "steps": {steps}}}"#);
            let url = url.clone();
            std::thread::spawn(move || {
                ureq::post(&format!("{url}/v1/images/generations"))
                    .send_string(&body)
                    .map(|r| r.status())
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    server.wait_for_metric("vq_running_images", 1.0);
    server.wait_for_metric("vq_queue_depth", 1.0);
    server.begin_shutdown();
    let mut refused = false;
    for _ in 0..500 {
        if TcpStream::connect(&address).is_err() {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(refused, "no new connections after the shutdown began");
    gate.expect("gated").open();
    for client in clients {
        assert_eq!(client.join().expect("client").expect("answered"), 200);
    }
    server.stop().expect("a clean stop");
}
