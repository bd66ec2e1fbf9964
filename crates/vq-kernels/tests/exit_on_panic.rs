//! `setup::exit_on_panic`: which panics end the process, and that a process whose main thread
//! waits forever on a thread that panicked still ends. The test runs its own binary again as the
//! child of each case (chosen by an environment variable) and watches it with a time limit.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vq_kernels::setup::{exit_on_panic, PanicExit};

const CASE: &str = "VQ_KERNELS_EXIT_ON_PANIC_CASE";
const LIMIT: Duration = Duration::from_secs(60);

/// What a child did: its exit status (`None`: killed at the time limit), stdout and stderr.
struct Outcome {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

fn main() {
    if let Ok(case) = std::env::var(CASE) {
        return child(&case);
    }
    const LINE: &str = "error: internal error (a bug, please report it): ";
    let library = run("library");
    assert_eq!(library.status, Some(1), "a library thread's panic must end the waiting process: {}", library.stderr);
    assert!(
        library.stderr.contains(&format!("{LINE}the poll failed: lock held for 6 s (at ")),
        "one folded line with the message and place, got: {}",
        library.stderr
    );
    println!("test a_library_threads_panic_ends_the_process ... ok");

    let program = run("program");
    assert_eq!(program.status, Some(0), "a program thread's panic is the program's to handle: {}", program.stderr);
    assert_eq!(program.stdout.trim(), "the program saw its thread panic");
    assert!(program.stderr.contains("a worker's bug"), "the hook set before still reports it: {}", program.stderr);
    assert!(!program.stderr.contains(LINE), "{}", program.stderr);
    println!("test a_program_threads_panic_is_left_to_the_program ... ok");

    let any = run("any");
    assert_eq!(any.status, Some(1), "with AnyThread every panic ends the process: {}", any.stderr);
    assert!(any.stderr.contains(&format!("{LINE}a worker's bug (at ")), "{}", any.stderr);
    println!("test any_threads_panic_ends_the_process ... ok");
}

/// Runs this binary as the child of `case`, killed after [`LIMIT`].
fn run(case: &str) -> Outcome {
    let mut child = Command::new(std::env::current_exe().expect("the test binary's path"))
        .env(CASE, case)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            break status.code();
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().map(|mut s| s.read_to_string(&mut stdout));
    child.stderr.take().map(|mut s| s.read_to_string(&mut stderr));
    Outcome { status, stdout, stderr }
}

/// The child processes. `library`: an unnamed thread (as a library starts them) panics while the
/// main thread waits for it forever. `program`: a thread named `vq-…` panics and the main thread
/// handles it. `any`: the same thread panics under [`PanicExit::AnyThread`] while the main thread
/// waits forever.
fn child(case: &str) {
    match case {
        "library" => {
            exit_on_panic(PanicExit::LibraryThreads);
            std::thread::spawn(|| panic!("the poll failed:\n  lock held for {} s", 6));
            wait_forever()
        }
        "program" => {
            exit_on_panic(PanicExit::LibraryThreads);
            let worker = std::thread::Builder::new().name("vq-worker".into()).spawn(|| panic!("a worker's bug"));
            if worker.expect("the worker starts").join().is_err() {
                println!("the program saw its thread panic");
            }
        }
        "any" => {
            exit_on_panic(PanicExit::AnyThread);
            let _ = std::thread::Builder::new().name("vq-worker".into()).spawn(|| panic!("a worker's bug"));
            wait_forever()
        }
        other => panic!("unknown case {other}"),
    }
}

fn wait_forever() -> ! {
    loop {
        std::thread::park();
    }
}
