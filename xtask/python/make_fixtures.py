#!/usr/bin/env python
"""Build the committed reference fixtures of vq-diffusion-rs (see fixtures/README.md).

    python xtask/python/make_fixtures.py --out fixtures

Writes fixtures/tiny/{hub,raw,bin,nolearn}/ (random-weight pipelines in four on-disk layouts) and
fixtures/reference/{tiny.safetensors, cases.json, tokenizer_ids.json, clip_b32.safetensors}.
Deterministic: two runs with the same package versions give byte-identical files.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import clip_b32  # noqa: E402
import layouts  # noqa: E402
import reference_tiny as ref  # noqa: E402
import tiny_pipeline as tp  # noqa: E402
import tokenizer_files as tf  # noqa: E402
import tokenizer_ids  # noqa: E402
from fixture_store import FixtureStore, versions  # noqa: E402

TEDDY = "teddy bear playing in the pool"
SECOND = "A red car parked by the sea at sunset!"
BASE = dict(pipeline="hub", prompt=TEDDY, num_inference_steps=10, guidance_scale=5.0, truncation_rate=1.0,
            num_images_per_prompt=1, seed=0)
CASES = [
    dict(BASE, name="g5_learned"),
    dict(BASE, name="g1_no_cfg", guidance_scale=1.0),
    dict(BASE, name="g3_nolearn", pipeline="nolearn", guidance_scale=3.0),
    dict(BASE, name="trunc086", truncation_rate=0.86),
    dict(BASE, name="two_prompts_x2", prompt=[TEDDY, SECOND], num_images_per_prompt=2),
    dict(BASE, name="two_prompts_x2_nolearn", pipeline="nolearn", prompt=[TEDDY, SECOND], num_images_per_prompt=2,
         guidance_scale=3.0),
    dict(BASE, name="long_prompt", prompt=ref.LONG_PROMPT),
    dict(BASE, name="seed42", seed=42),
    dict(BASE, name="steps20", num_inference_steps=20),
    dict(BASE, name="seed_2pow32_plus5_trunc086", seed=2**32 + 5, truncation_rate=0.86),
]
CLIP_B32_PROMPTS = [TEDDY, "wow!!! a (teddy) bear!", "Café naïve 東京タワー 👩‍🚀", ref.LONG_PROMPT]


def log(msg: str) -> None:
    print(f"[make_fixtures {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def assert_same_weights(a: dict, b: dict, what: str, skip: tuple[str, ...] = ()) -> None:
    for comp, sd in a.items():
        if comp in skip:
            continue
        other = b[comp]
        assert sd.keys() == other.keys(), f"{what}/{comp}: keys differ: {sorted(set(sd) ^ set(other))[:5]}"
        for k in sd:
            assert torch.equal(sd[k], other[k]), f"{what}/{comp}: {k} differs"


def run_cases(pipes: dict, store: FixtureStore) -> list[dict]:
    out = []
    for case in CASES:
        kwargs = {k: v for k, v in case.items() if k not in ("name", "pipeline")}
        with ref.recorded_steps(pipes[case["pipeline"]]) as records:
            image, tokens = ref.call_pipeline(pipes[case["pipeline"]], kwargs)
        # the same weights in other layouts must give identical outputs
        others = ["raw", "bin"] if case["pipeline"] == "hub" else []
        for other in others:
            image2, tokens2 = ref.call_pipeline(pipes[other], kwargs)
            assert np.array_equal(image, image2) and torch.equal(tokens, tokens2), f"{case['name']}: {other} differs from hub"
        n = case["name"]
        store.add(f"e2e.{n}.tokens", tokens, f"case {n}: final prev_sample [B, N]")
        store.add(f"e2e.{n}.image", torch.from_numpy(image), f"case {n}: images, output_type='np' [B, Hpx, Wpx, 3]")
        store.add(f"e2e.{n}.image_u8", torch.from_numpy(ref.image_u8(image).astype(np.int64)), f"case {n}: round(image * 255) as numpy_to_pil computes it [B, Hpx, Wpx, 3]")
        entry = dict(case)
        entry["pipeline_dir"] = f"tiny/{case['pipeline']}"
        entry["generator"] = f"torch.Generator('cpu').manual_seed({case['seed']})"
        entry["output_type"] = "np"
        entry["batch"] = (len(case["prompt"]) if isinstance(case["prompt"], list) else 1) * case["num_images_per_prompt"]
        entry["verified_identical_on"] = [case["pipeline"], *others]
        entry["distinct_codes_per_image"] = [int(torch.unique(r).numel()) for r in tokens]
        entry["min_gumbel_margin"] = min(ref.gumbel_margin(r["log_p_x_t_min_1"], r["uniform"]) for r in records)
        entry["masked_left"] = int((tokens == pipes["hub"].transformer.num_vector_embeds - 1).sum())
        out.append(entry)
        log(f"case {n}: batch {entry['batch']}, codes {entry['distinct_codes_per_image']}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("fixtures"), help="output directory (default: fixtures)")
    ap.add_argument("--bpe", type=Path, default=None,
                    help="path to bpe_simple_vocab_16e6.txt.gz (default: pip download --no-deps open_clip_torch==3.3.0)")
    ap.add_argument("--skip-clip-b32", action="store_true", help="do not (re)build reference/clip_b32.safetensors")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, what the fixtures used)")
    args = ap.parse_args()

    t0 = time.time()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)

    out: Path = args.out
    tiny = out / "tiny"
    reference = out / "reference"
    reference.mkdir(parents=True, exist_ok=True)

    # 1. tokenizer files
    vocab, merges = tf.build_vocab_and_merges(tf.fetch_bpe_gz(args.bpe))
    log("tokenizer vocabulary rebuilt (49,408 tokens, 48,894 merges)")

    # 2. the tiny pipeline in four layouts
    tp.apply_loader_patches()
    components = tp.build_components()
    with tempfile.TemporaryDirectory() as tmp:
        tf.write_hub_tokenizer_dir(Path(tmp) / "tok", vocab, merges)
        tokenizer = tf.load_tokenizer(Path(tmp) / "tok")
        pipe_mem = tp.make_pipeline(components, tokenizer)
        layouts.write_raw(pipe_mem, tiny / "raw")
    layouts.write_hub_like(tiny / "raw", tiny / "hub", vocab, merges, fmt="safetensors", fp16=True, learnable=True)
    layouts.write_hub_like(tiny / "raw", tiny / "bin", vocab, merges, fmt="bin", fp16=False, learnable=True)
    layouts.write_hub_like(tiny / "raw", tiny / "nolearn", vocab, merges, fmt="safetensors", fp16=False, learnable=False)
    log("tiny pipeline written: raw, hub, bin, nolearn")

    pipes = {name: tp.load_pipeline(tiny / name) for name in ["hub", "raw", "bin", "nolearn"]}
    mem = tp.state_dicts(pipe_mem)
    for name, p in pipes.items():
        skip = ("learned_classifier_free_sampling_embeddings",) if name == "nolearn" else ()
        assert_same_weights(mem, tp.state_dicts(p), name, skip)
    assert not pipes["nolearn"].learned_classifier_free_sampling_embeddings.learnable
    assert pipes["nolearn"].learned_classifier_free_sampling_embeddings.embeddings.numel() == 0
    log("raw/hub/bin/nolearn load to weights identical to the in-memory pipeline")

    # 3. reference tensors of the tiny pipeline (from the hub layout)
    pipe = pipes["hub"]
    K = pipe.transformer.num_vector_embeds - 1
    h, w = pipe.transformer.height, pipe.transformer.width
    N = h * w
    store = FixtureStore()
    ref.add_tokens_and_text(store, pipe)
    emb = ref.add_encode(store, pipe)
    ref.add_transformer_and_guidance(store, pipe, emb, K, N)
    ref.add_scheduler(store, pipe, K, N)
    trunc_stats = ref.add_truncation(store, pipe)
    vq_stats = ref.add_vqvae(store, pipe, K, h, w)
    pipe_case = ref.add_pipeline_call(store, pipe, K)
    ref.add_rng(store)
    log("reference sections done; running e2e cases")
    cases = run_cases(pipes, store)

    cfg = lambda m: {k: v for k, v in dict(m.config).items() if not k.startswith("_")}
    meta = {
        "versions": versions(),
        "pipeline_dir": "tiny/hub (identical numbers from tiny/raw and tiny/bin)",
        "weights_realigned": "every parameter/buffer copied into freshly allocated memory after loading",
        "sizes": {"K": K, "K_plus_1": K + 1, "N": N, "h": h, "w": w, "H": pipe.text_encoder.config.hidden_size,
                  "D": pipe.transformer.inner_dim, "layers": len(pipe.transformer.transformer_blocks),
                  "C_vq": pipe.vqvae.config.vq_embed_dim, "Hpx": pipe.vqvae.config.sample_size,
                  "Wpx": pipe.vqvae.config.sample_size, "L": tf.MAX_LEN},
        "configs": {"transformer": cfg(pipe.transformer), "vqvae": cfg(pipe.vqvae),
                    "text_encoder": {k: getattr(pipe.text_encoder.config, k) for k in tp.TEXT_CONFIG},
                    "scheduler": cfg(pipe.scheduler), "cf": cfg(pipe.learned_classifier_free_sampling_embeddings)},
        "text_attn_implementation": pipe.text_encoder.config._attn_implementation,
        "tok_prompts": ref.TOK_PROMPTS,
        "transformer_timesteps": ref.TRANSFORMER_TIMESTEPS,
        "sched_timesteps": ref.SCHED_TIMESTEPS,
        "guidance_scale": ref.GUIDANCE,
        "truncation_rate": ref.TRUNCATION,
        "seed": ref.SEED,
        "pipe_call": pipe_case,
        "pipe_timesteps": [int(store[f"pipe.step{i:03d}.timestep"][0]) for i in range(ref.STEPS)],
        "gumbel_recipe": ref.GUMBEL_RECIPE,
        "truncation_stats": trunc_stats,
        "vqvae_encoder_stats": vq_stats,
        "e2e_cases": [c["name"] for c in cases],
    }
    store.write(reference / "tiny.safetensors", meta)
    log(f"reference/tiny.safetensors: {len(store.tensors)} tensors")

    cases_doc = {
        "description": "end-to-end cases of fixtures/reference/tiny.safetensors (tensors e2e.<name>.{tokens,image,image_u8}); "
                       "call: pipe(prompt, num_inference_steps, guidance_scale, truncation_rate, num_images_per_prompt, "
                       "generator=torch.Generator('cpu').manual_seed(seed), output_type='np')",
        "cases": cases,
    }
    tf.write_json(reference / "cases.json", cases_doc)

    # 4. tokenizer ids
    from tokenizers import AddedToken
    from transformers import CLIPTokenizer

    stock = CLIPTokenizer(vocab=vocab, merges=list(merges), model_max_length=tf.MAX_LEN)
    assert stock.pad_token == tf.EOS and stock.pad_token_id == tf.EOS_ID
    backend = tf.build_backend_tokenizer(vocab, merges)
    with tempfile.TemporaryDirectory() as tmp:
        backend.save(str(Path(tmp) / "tokenizer.json"))
        assert os.path.getsize(Path(tmp) / "tokenizer.json") == 3_642_072, "stock tokenizer.json differs from the pipeline of docs/reference.md (Tokenizer)"
    backend.add_special_tokens([AddedToken("!", special=True, normalized=False)])
    raw_tok = tf.load_tokenizer(tiny / "raw" / "tokenizer")
    doc = tokenizer_ids.build(pipes["hub"].tokenizer, stock, backend, raw_tok)
    tf.write_json(reference / "tokenizer_ids.json", doc, indent=1)
    log(f"reference/tokenizer_ids.json: {len(doc['prompts'])} prompts")

    # 5. CLIP ViT-B/32 text tower
    if not args.skip_clip_b32:
        info = clip_b32.build(CLIP_B32_PROMPTS, pipes["hub"].tokenizer, reference / "clip_b32.safetensors")
        log(f"reference/clip_b32.safetensors: {info['params']:,} recipe parameters")

    log(f"done in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
