//! Tests of clip-text against the committed reference fixtures (`fixtures/README.md`):
//! one test binary, one module per topic.

mod activation;
mod attention;
mod clip_b32;
mod common;
mod config;
mod load_errors;
mod model;
mod pooling;
mod tokenizer;
