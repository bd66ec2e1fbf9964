//! Tests of vq-model, in one binary: config parsing, layer arithmetic with exact values, weight
//! loading (both layouts, `.bin`, fp16, error cases) and parity with diffusers 0.42.1 on the
//! tiny reference pipeline (`fixtures/reference/tiny.safetensors`, made by
//! `xtask/python/make_fixtures.py`).

mod common;
mod config;
mod layers;
mod loading;
mod parity;
