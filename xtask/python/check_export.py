"""Load a pipeline folder exported by `xtask train-transformer` / `xtask export` with diffusers 0.42.1
and generate, to check that diffusers reads the export and samples the same tokens as the Rust pipeline.

    ../venv-reference/bin/python xtask/python/check_export.py --model runs/diffusion/pipeline \
        --prompt "a red circle" --seed 0 --guidance 3 [--rust-tokens tokens.json]

Prints diffusers' final token ids (one row per image) as JSON. With --rust-tokens (the `--tokens` file
of `vq-diffusion generate --model DIR --prompt ... --seed S --rng torch --guidance-scale G --steps T`), the
two must be identical: exit status 1 and the first differing positions otherwise.

With --cases-out FILE, every --prompt (repeatable) is one case, and the cases — prompt, seed, steps,
guidance, truncation, tokens — go to FILE as JSON: the reference the shipped model's CI test reads
(`fixtures/reference/shapes_cases.json`, made from `models/shapes` with `--steps 10`, the third prompt's
case with `--truncation 0.7`: `--truncation` once for all prompts or once per prompt).
"""

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_pipeline import apply_loader_patches  # noqa: E402


def generate(pipe, prompt: str, seed: int, steps: int, guidance: float, truncation: float) -> dict:
    """One image of `prompt` with torch's CPU generator seeded `seed`; its final token ids."""
    final = {}

    def keep_tokens(step, timestep, sample):
        final["tokens"] = sample.clone()

    generator = torch.Generator("cpu").manual_seed(seed)
    with torch.no_grad():
        out = pipe(
            prompt,
            num_inference_steps=steps,
            guidance_scale=guidance,
            truncation_rate=truncation,
            generator=generator,
            callback=keep_tokens,
            callback_steps=1,
        )
    return {
        "prompt": prompt,
        "seed": seed,
        "steps": steps,
        "guidance": guidance,
        "truncation": truncation,
        "tokens": final["tokens"].tolist(),
        "image": out.images[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--prompt", action="append", help="repeatable (default: a red circle)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--truncation", type=float, action="append", help="repeatable: one for every prompt, or one per prompt (default: 1)")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the scheduler's num_train_timesteps)")
    parser.add_argument("--cases-out", type=Path, help="write every prompt's case here (JSON)")
    parser.add_argument("--rust-tokens", type=Path)
    parser.add_argument("--image", type=Path, help="write diffusers' image here (PNG)")
    args = parser.parse_args()

    apply_loader_patches()
    from diffusers import VQDiffusionPipeline

    pipe = VQDiffusionPipeline.from_pretrained(str(args.model))
    dtypes = {p.dtype for m in (pipe.transformer, pipe.text_encoder, pipe.vqvae) for p in m.parameters()}
    assert dtypes == {torch.float32}, f"components loaded as {dtypes}, expected float32"
    assert pipe.tokenizer.pad_token == "!" and pipe.tokenizer.model_max_length == pipe.text_encoder.config.max_position_embeddings
    steps = args.steps or pipe.scheduler.config.num_train_timesteps
    prompts = args.prompt or ["a red circle"]
    truncations = args.truncation or [1.0]
    if len(truncations) == 1:
        truncations = truncations * len(prompts)
    if len(truncations) != len(prompts):
        parser.error(f"{len(truncations)} --truncation values for {len(prompts)} prompts: give one, or one per prompt")
    cases = [generate(pipe, p, args.seed, steps, args.guidance, t) for p, t in zip(prompts, truncations)]
    for case in cases:
        print(json.dumps({k: case[k] for k in ("prompt", "seed", "steps", "tokens")}))
    if args.cases_out:
        args.cases_out.write_text(json.dumps([{k: v for k, v in c.items() if k != "image"} for c in cases], indent=1) + "\n")
    first = cases[0]
    tokens = first["tokens"]
    if args.image:
        first["image"].save(args.image)
    if args.rust_tokens:
        rust = json.loads(args.rust_tokens.read_text())
        rust = rust["tokens"] if isinstance(rust, dict) else rust
        if rust != tokens:
            diffs = [(i, j, a, b) for i, (ra, rb) in enumerate(zip(tokens, rust)) for j, (a, b) in enumerate(zip(ra, rb)) if a != b]
            print(f"MISMATCH: {len(diffs)} differing tokens, first (image, position, diffusers, rust): {diffs[:8]}")
            return 1
        print(f"OK: diffusers and Rust sample the same {sum(len(r) for r in tokens)} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
