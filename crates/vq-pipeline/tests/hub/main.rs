//! Resolving models through the shared Hugging Face cache: offline in the cache's real layout,
//! and online against a fake hub on 127.0.0.1 — the happy path into `huggingface_hub`'s layout,
//! and every trick a hostile `HF_ENDPOINT` can play, none of which may write outside the cache.

mod common;
mod download;
mod hostile;
mod mock;
mod offline;
