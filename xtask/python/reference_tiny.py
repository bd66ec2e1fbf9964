"""Reference tensors of the tiny pipeline: `fixtures/reference/tiny.safetensors` (contents: fixtures/README.md).

Every section below adds tensors to a FixtureStore with a one-line description; the same descriptions end up
in the file's `fixture` metadata and in fixtures/README.md.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

import tokenizer_files as tf
from fixture_store import FixtureStore

GUMBEL_RECIPE = (
    "u = torch.rand(shape, generator) (CPU MT19937, float32 = low 24 bits of one u32 * 2^-24, row-major); "
    "g = -log(-log(u + 1e-30) + 1e-30) in f32; prev_sample = argmax over classes of (log_p + g), first index on ties"
)

# tok.* prompts: plain; `!!!` and parentheses; unicode/CJK/emoji; whitespace; empty; long.
LONG_PROMPT = " ".join(
    [
        "a very detailed oil painting of a small red fox sitting in a snowy forest at dawn,",
        "with tall pine trees, soft golden light, frozen river, distant mountains, flying birds,",
        "warm colours, 4k, trending on artstation, by an old master, highly intricate brush strokes,",
        "dramatic sky with pink clouds, a wooden cabin with smoke rising from the chimney,",
        "footprints in the fresh snow, a lantern hanging on a branch, and a curious owl watching",
        "from above while a gentle wind carries snowflakes across the quiet valley below the hills",
        "and the first rays of the sun touch the icy peaks far away in the north of the land.",
        "The fox looks at the viewer with bright amber eyes, its fur glowing in the cold morning air,",
        "and everything is calm, silent and beautiful like in an old fairy tale told by grandmother.",
    ]
)
TOK_PROMPTS = [
    "teddy bear playing in the pool",
    "wow!!! a (teddy) bear!",
    "Café naïve résumé — 東京タワー 서울 👩‍🚀 👍🏽 ©®™",
    "  Multiple   spaces\tand\nnewlines   here  ",
    "",
    LONG_PROMPT,
]

TRANSFORMER_TIMESTEPS = [0, 37, 99]
SCHED_TIMESTEPS = [0, 1, 37, 99]
MIXED_TIMESTEPS = [5, 80]
GUIDANCE = 5.0
TRUNCATION = 0.86
SEED = 0
STEPS = 10
CHAIN_STEPS = 10
CHAIN_SEEDS = {"chain": 7, "chain2": 2**32 + 5}
TRUNC_RATES = {"r050": 0.5, "r086": 0.86, "r100": 1.0}
TRUNC_SHAPE = (1, 512, 64)
RNG_FIRST = [0.49625659, 0.76822180, 0.08847743]


def gumbel_argmax(log_p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    g = -torch.log(-torch.log(u + 1e-30) + 1e-30)
    return (log_p + g).argmax(dim=1)


def gumbel_margin(log_p: torch.Tensor, u: torch.Tensor) -> float:
    """Smallest gap between the best and second-best noised class over all pixels (near-tie indicator)."""
    g = -torch.log(-torch.log(u + 1e-30) + 1e-30)
    top2 = (log_p + g).topk(2, dim=1).values
    return float((top2[:, 0] - top2[:, 1]).min())


def pipeline_rows(tokenizer, prompts: list[str]) -> tuple[torch.Tensor, list[int]]:
    """What `_encode_prompt` feeds CLIP, each prompt tokenised alone: pad to 77, no truncation, first 77 columns."""
    rows, lens = [], []
    for p in prompts:
        ids = tokenizer(p, padding="max_length", max_length=tf.MAX_LEN, return_tensors="pt").input_ids[0]
        lens.append(len(tokenizer(p).input_ids))
        rows.append(ids[: tf.MAX_LEN])
    return torch.stack(rows), lens


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


@contextlib.contextmanager
def recorded_steps(pipe):
    """Record every scheduler.step call (timestep, input, uniform draw, output) without changing the numbers.

    The Gumbel draw is recorded by replacing the scheduler module's `gumbel_noised` with a function performing
    the same operations; a second, unrecorded call checks that the result is unchanged.
    """
    import diffusers.schedulers.scheduling_vq_diffusion as svd

    records = []
    original_gumbel = svd.gumbel_noised
    original_step = pipe.scheduler.step

    def gumbel(logits, generator):
        u = torch.rand(logits.shape, device=logits.device, generator=generator)
        records[-1]["uniform"] = u.clone()
        records[-1]["log_p_x_t_min_1"] = logits.clone()
        return -torch.log(-torch.log(u + 1e-30) + 1e-30) + logits

    def step(model_output, timestep, sample, generator=None, return_dict=True):
        records.append({"timestep": int(timestep), "model_output": model_output.clone(), "sample": sample.clone()})
        out = original_step(model_output, timestep=timestep, sample=sample, generator=generator, return_dict=return_dict)
        prev = out.prev_sample if return_dict else out[0]
        records[-1]["prev_sample"] = prev.clone()
        return out

    svd.gumbel_noised = gumbel
    pipe.scheduler.step = step
    try:
        yield records
    finally:
        svd.gumbel_noised = original_gumbel
        del pipe.scheduler.step


def call_pipeline(pipe, case: dict) -> tuple[np.ndarray, torch.Tensor]:
    """Run one e2e case; returns (image NHWC float32, final prev_sample)."""
    final = {}

    def cb(i, t, sample):
        final["sample"] = sample.clone()

    out = pipe(
        case["prompt"],
        num_inference_steps=case["num_inference_steps"],
        guidance_scale=case["guidance_scale"],
        truncation_rate=case["truncation_rate"],
        num_images_per_prompt=case["num_images_per_prompt"],
        generator=torch.Generator("cpu").manual_seed(case["seed"]),
        output_type="np",
        callback=cb,
        callback_steps=1,
    )
    return out.images, final["sample"]


def image_u8(image: np.ndarray) -> np.ndarray:
    """numpy_to_pil: (x * 255).round().astype(uint8), in float32 numpy."""
    return (image * 255).round().astype("uint8")


# --- sections ----------------------------------------------------------------------------------------


def add_tokens_and_text(store: FixtureStore, pipe) -> None:
    ids, lens = pipeline_rows(pipe.tokenizer, TOK_PROMPTS)
    store.add("tok.input_ids", ids, "pipeline tokenisation of the six TOK_PROMPTS (metadata `tok_prompts`), each alone: pad with id 0 to 77, no truncation, first 77 columns")
    store.add("tok.untruncated_len", torch.tensor(lens), "number of ids of each prompt before padding/cutting (BOS and EOS included)")
    with torch.no_grad():
        out = pipe.text_encoder(ids)
    store.add("text.last_hidden_state", out.last_hidden_state, "CLIPTextModel last_hidden_state (after final_layer_norm, causal mask, no attention mask) of tok.input_ids")
    store.add("text.prompt_embeds", l2_normalise(out.last_hidden_state), "text.last_hidden_state divided by its L2 norm over the last axis (per token, no epsilon)")
    store.add("text.pooled", out.pooler_output, "CLIPTextModel pooler_output: last_hidden_state at argmax(input_ids) (legacy eos_token_id = 2 rule)")


def add_encode(store: FixtureStore, pipe) -> torch.Tensor:
    cf = pipe.learned_classifier_free_sampling_embeddings.embeddings
    store.add("cfg.embeddings", cf, "learned classifier-free (negative) embeddings as stored [77, H], used without normalisation")
    with torch.no_grad():
        emb = pipe._encode_prompt(TOK_PROMPTS[0], 1, True)
    assert torch.equal(emb[0], cf) and torch.equal(emb[1], store["text.prompt_embeds"][0])
    return store.add("encode.prompt_embeds", emb, "_encode_prompt(tok prompt 0, 1, do_cfg=True) = cat([cfg.embeddings, text.prompt_embeds[0]]): row 0 uncond, row 1 text")


def fixed_latents(K: int, N: int) -> torch.Tensor:
    """ids ~ U{0..K-1}, then masked (id K) with probability 0.7 (row 0) / 0.2 (row 1); generator seed 1000."""
    g = torch.Generator("cpu").manual_seed(1000)
    ids = torch.randint(0, K, (2, N), generator=g)
    masked = torch.rand((2, N), generator=g) < torch.tensor([[0.7], [0.2]])
    return torch.where(masked, torch.full_like(ids, K), ids)


def transformer_forward(transformer, latents, emb, t: int, taps: dict | None = None):
    handles = []
    if taps is not None:
        blocks = transformer.transformer_blocks
        points = {
            "embed": transformer.latent_image_embedding,
            "block0": blocks[0],
            f"block{len(blocks) - 1}": blocks[-1],
            "norm_out": transformer.norm_out,
        }
        for name, mod in points.items():
            handles.append(mod.register_forward_hook(lambda m, i, o, name=name: taps.__setitem__(name, o.clone())))
    try:
        with torch.no_grad():
            return transformer(latents, encoder_hidden_states=emb, timestep=torch.tensor(t, dtype=torch.long)).sample
    finally:
        for h in handles:
            h.remove()


def add_transformer_and_guidance(store: FixtureStore, pipe, emb: torch.Tensor, K: int, N: int) -> None:
    latents = store.add("transformer.in.latents", fixed_latents(K, N), "fixed ids (generator seed 1000): row 0 ~70% mask, row 1 ~20% mask (mask id = K)")
    for t in TRANSFORMER_TIMESTEPS:
        taps: dict = {}
        out = transformer_forward(pipe.transformer, latents, emb, t, taps)
        store.add(f"transformer.t{t}.log_p_x_0", out, f"Transformer2DModel(transformer.in.latents, encode.prompt_embeds, timestep={t}) log-probs [2, K, N]")
        for name, v in taps.items():
            store.add(f"transformer.t{t}.hidden.{name}", v, f"forward-hook output of `{name}` at t={t} [2, N, D]")
        uncond, text = out.chunk(2)
        guided = uncond + GUIDANCE * (text - uncond)
        guided = guided - torch.logsumexp(guided, dim=1, keepdim=True)
        truncated = pipe.truncate(guided, TRUNCATION)
        store.add(f"guide.t{t}.log_p_x_0", guided, f"CFG of transformer.t{t}.log_p_x_0 (row 0 uncond, row 1 text), scale {GUIDANCE}, minus logsumexp over classes")
        store.add(f"guide.t{t}.truncated", truncated, f"truncate(guide.t{t}.log_p_x_0, {TRUNCATION}) (removed entries = -inf)")
        store.add(f"guide.t{t}.clamped", truncated.clamp(-70), f"guide.t{t}.truncated.clamp(min=-70)")
    # per-sample timesteps, one row at a time (diffusers itself cannot take a (B,) timestep)
    rows = [transformer_forward(pipe.transformer, latents[b : b + 1], emb[b : b + 1], t) for b, t in enumerate(MIXED_TIMESTEPS)]
    store.add("transformer.mixed.timesteps", torch.tensor(MIXED_TIMESTEPS), "per-sample timesteps of transformer.mixed.log_p_x_0")
    store.add("transformer.mixed.log_p_x_0", torch.cat(rows), "row b = transformer(transformer.in.latents[b], encode.prompt_embeds[b], scalar timestep transformer.mixed.timesteps[b])")


def add_scheduler_tables(store: FixtureStore, prefix: str, scheduler, what: str) -> None:
    for name in ["log_at", "log_bt", "log_ct", "log_cumprod_at", "log_cumprod_bt", "log_cumprod_ct"]:
        store.add(f"{prefix}.{name}", getattr(scheduler, name), f"{what} table {name} (f64-computed, f32-stored)")


def scheduler_step_record(scheduler, log_p_x_0, sample, t, generator):
    """One step with the uniform draw captured from a clone of the generator."""
    g_copy = torch.Generator("cpu")
    g_copy.set_state(generator.get_state())
    if t == 0:
        log_p = log_p_x_0
    else:
        log_p = scheduler.q_posterior(log_p_x_0, sample, torch.tensor(t))
    u = torch.rand(log_p.shape, generator=g_copy)
    prev = scheduler.step(log_p_x_0, timestep=torch.tensor(t), sample=sample, generator=generator).prev_sample
    assert torch.equal(prev, gumbel_argmax(log_p, u)), f"prev_sample != argmax(log_p + gumbel(u)) at t={t}"
    return log_p, u, prev


def add_scheduler(store: FixtureStore, pipe, K: int, N: int) -> None:
    from diffusers import VQDiffusionScheduler

    sched = pipe.scheduler
    add_scheduler_tables(store, "sched", sched, f"tiny scheduler (num_vec_classes {K + 1})")
    inputs = {
        "in": (store[f"guide.t{TRANSFORMER_TIMESTEPS[-1]}.clamped"], store["transformer.in.latents"][0:1],
               f"= guide.t{TRANSFORMER_TIMESTEPS[-1]}.clamped", "= transformer.in.latents[0:1]"),
        "in2": (store["transformer.t37.log_p_x_0"], store["transformer.in.latents"],
                "= transformer.t37.log_p_x_0 (batch 2)", "= transformer.in.latents (batch 2)"),
    }
    for key, (log_p_x_0, sample, d_lp, d_s) in inputs.items():
        store.add(f"sched.{key}.log_p_x_0", log_p_x_0, f"scheduler step input model_output {d_lp}")
        store.add(f"sched.{key}.sample", sample, f"scheduler step input sample {d_s}")
        for t in SCHED_TIMESTEPS:
            sub = "" if key == "in" else "in2."
            g = torch.Generator("cpu").manual_seed(SEED + t)
            log_p, u, prev = scheduler_step_record(sched, log_p_x_0, sample, t, g)
            store.add(f"sched.{sub}t{t}.log_p_x_t_min_1", log_p, f"t={t}: q_posterior(sched.{key}.log_p_x_0, sched.{key}.sample, t) [B, K+1, N] (t=0: the model output itself [B, K, N])")
            store.add(f"sched.{sub}t{t}.uniform", u, f"t={t}: the Gumbel uniforms, torch.rand(shape) from a fresh CPU generator seeded {SEED}+t")
            store.add(f"sched.{sub}t{t}.prev_sample", prev, f"t={t}: scheduler.step(...).prev_sample = argmax(log_p + gumbel(uniform)) (asserted)")

    # whole chains: one generator across all steps
    g = torch.Generator("cpu").manual_seed(4000)
    logits = 3.0 * torch.randn((CHAIN_STEPS, 2, K, N), generator=g)
    model_output = F.log_softmax(logits, dim=2)
    store.add("sched.chain.model_output", model_output, f"fixed model outputs for a {CHAIN_STEPS}-step chain: log_softmax over classes of 3*N(0,1) (generator seed 4000) [S, 2, K, N]")
    chain_sched = VQDiffusionScheduler(**sched.config)
    chain_sched.set_timesteps(CHAIN_STEPS)
    store.add("sched.chain.timesteps", chain_sched.timesteps.clone(), f"set_timesteps({CHAIN_STEPS}).timesteps = [S-1, ..., 0]")
    for name, seed in CHAIN_SEEDS.items():
        gen = torch.Generator("cpu").manual_seed(seed)
        sample = torch.full((2, N), K, dtype=torch.long)
        samples = []
        for i, t in enumerate(chain_sched.timesteps):
            sample = chain_sched.step(model_output[i], timestep=t, sample=sample, generator=gen).prev_sample
            samples.append(sample.clone())
        store.add(f"sched.{name}.seed", torch.tensor([seed]), f"seed of the single CPU generator driving sched.{name}.samples")
        store.add(f"sched.{name}.samples", torch.stack(samples), f"prev_sample after each step i (timestep sched.chain.timesteps[i], model_output sched.chain.model_output[i]), starting all-mask, ONE generator seeded {seed} across all steps [S, 2, N]")

    ithq = VQDiffusionScheduler(num_vec_classes=4097, num_train_timesteps=100)
    add_scheduler_tables(store, "sched_ithq", ithq, "ITHQ-size scheduler (num_vec_classes 4097)")


def naive_f32_keep(log_p: torch.Tensor, rate: float) -> torch.Tensor:
    """What a port gets with a plain float32 running sum (used only to check the fixture exercises the rule)."""
    s, idx = torch.sort(log_p, 1, descending=True)
    p = torch.exp(s).numpy()
    c = np.zeros_like(p)
    acc = np.zeros(p[:, 0, :].shape, dtype=np.float32)
    for k in range(p.shape[1]):
        acc = (acc + p[:, k, :]).astype(np.float32)
        c[:, k, :] = acc
    keep = torch.from_numpy(c) < torch.tensor(rate, dtype=torch.float32)
    keep = torch.cat([torch.ones_like(keep[:, :1]), keep[:, :-1]], dim=1)
    return keep.gather(1, idx.argsort(1))


def add_truncation(store: FixtureStore, pipe) -> dict:
    stats = {}
    for i, (name, rate) in enumerate(TRUNC_RATES.items()):
        g = torch.Generator("cpu").manual_seed(5000 + i)
        x = F.log_softmax(3.0 * torch.randn(TRUNC_SHAPE, generator=g), dim=1)
        out = pipe.truncate(x, rate)
        store.add(f"trunc.{name}.in", x, f"log_softmax over dim 1 of N(0, 3^2) logits, generator seed {5000 + i}")
        store.add(f"trunc.{name}.out", out, f"pipe.truncate(trunc.{name}.in, {rate}) (removed = -inf)")
        kept = torch.isfinite(out)
        naive = naive_f32_keep(x, rate)
        stats[name] = {"rate": rate, "removed": int((~kept).sum()), "naive_f32_cumsum_mismatches": int((naive != kept).sum())}
    assert stats["r100"]["removed"] > 0, "rate 1.0 should still remove entries whose f32 partial sum reached 1"
    assert sum(s["naive_f32_cumsum_mismatches"] for s in stats.values()) > 0, "inputs do not exercise the f64 cumsum rule"
    return stats


def add_vqvae(store: FixtureStore, pipe, K: int, h: int, w: int) -> dict:
    vq = pipe.vqvae
    C = vq.config.vq_embed_dim
    g = torch.Generator("cpu").manual_seed(2000)
    idx = torch.randint(0, K, (1, h * w), generator=g)
    with torch.no_grad():
        entries = vq.quantize.get_codebook_entry(idx, shape=(1, h, w, C))
        decoded = vq.decode(entries, force_not_quantize=True).sample
    store.add("vqvae.in.indices", idx, "random codebook ids (generator seed 2000) [1, N]")
    store.add("vqvae.codebook_entries", entries, "quantize.get_codebook_entry(vqvae.in.indices, (1, h, w, C)) -> NCHW [1, C, h, w]")
    store.add("vqvae.decoded", decoded, "vqvae.decode(vqvae.codebook_entries, force_not_quantize=True).sample [1, 3, Hpx, Wpx]")
    store.add("vqvae.image", (decoded / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1), "(vqvae.decoded / 2 + 0.5).clamp(0, 1), NHWC [1, Hpx, Wpx, 3]")

    g = torch.Generator("cpu").manual_seed(3000)
    hpx = vq.config.sample_size
    x = 2.0 * torch.rand((2, 3, hpx, hpx), generator=g) - 1.0
    with torch.no_grad():
        lat = vq.encode(x).latents
        quant, _, (_, _, ids) = vq.quantize(lat)
        dec = vq.decode(lat).sample
        z = lat.permute(0, 2, 3, 1).reshape(-1, C)
        d = torch.cdist(z.double(), vq.quantize.embedding.weight.double())
        two = d.topk(2, dim=1, largest=False).values
        gap = float((two[:, 1] - two[:, 0]).min())
    ids = ids.reshape(2, -1)
    assert torch.equal(ids.reshape(-1), d.argmin(dim=1)), "f32 cdist argmin differs from f64 argmin"
    store.add("vqvae.enc.image", x, "2 * U[0,1) - 1 (generator seed 3000) [2, 3, Hpx, Wpx]")
    store.add("vqvae.enc.latents", lat, "VQModel.encode(vqvae.enc.image).latents = quant_conv(encoder(x)) [2, C, h, w] (not quantised)")
    store.add("vqvae.enc.quantized", quant, "quantize(vqvae.enc.latents)[0]: z + (E[idx] - z) in f32 (straight-through form), NCHW")
    store.add("vqvae.enc.indices", ids, "argmin_k ||z - E_k|| per latent pixel (quantize(...)[2][2]) reshaped [2, N]")
    store.add("vqvae.enc.decoded", dec, "VQModel.decode(vqvae.enc.latents, force_not_quantize=False).sample (re-quantises) [2, 3, Hpx, Wpx]")
    return {"min_distance_gap_f64": gap, "max_abs_quantized_minus_codebook": float((quant - vq.quantize.embedding.weight[ids.reshape(-1)].reshape(2, h, w, C).permute(0, 3, 1, 2)).abs().max())}


def add_pipeline_call(store: FixtureStore, pipe, K: int) -> dict:
    case = dict(prompt=TOK_PROMPTS[0], num_inference_steps=STEPS, guidance_scale=GUIDANCE, truncation_rate=TRUNCATION, num_images_per_prompt=1, seed=SEED)
    with recorded_steps(pipe) as records:
        image, final = call_pipeline(pipe, case)
    image2, final2 = call_pipeline(pipe, case)
    assert np.array_equal(image, image2) and torch.equal(final, final2), "recording changed the pipeline call"
    all_u = []
    for i, r in enumerate(records):
        assert torch.equal(r["prev_sample"], gumbel_argmax(r["log_p_x_t_min_1"], r["uniform"]))
        store.add(f"pipe.step{i:03d}.timestep", torch.tensor([r["timestep"]]), f"step {i}: timestep [1]")
        store.add(f"pipe.step{i:03d}.model_output", r["model_output"], f"step {i}: scheduler.step input (guided, truncated, clamped log-probs) [1, K, N]")
        store.add(f"pipe.step{i:03d}.uniform", r["uniform"], f"step {i}: Gumbel uniforms [1, K+1, N] ([1, K, N] at t=0)")
        store.add(f"pipe.step{i:03d}.prev_sample", r["prev_sample"], f"step {i}: prev_sample [1, N]")
        all_u.append(r["uniform"].reshape(-1))
    # the per-step uniforms are one continuous stream of the seed-0 generator
    stream = torch.rand(sum(u.numel() for u in all_u), generator=torch.Generator("cpu").manual_seed(SEED))
    assert torch.equal(torch.cat(all_u), stream), "per-step uniforms are not one continuous stream"
    stats = {"min_gumbel_margin": min(gumbel_margin(r["log_p_x_t_min_1"], r["uniform"]) for r in records)}
    store.add("pipe.image", image, f"pipe(tok prompt 0, {STEPS} steps, guidance {GUIDANCE}, truncation {TRUNCATION}, seed {SEED}, output_type='np').images [1, Hpx, Wpx, 3]")
    return dict(case, **stats)


def mt19937_uniforms(seed: int, n: int) -> np.ndarray:
    """Independent check of torch's CPU float32 rand: numpy MT19937 with init_genrand(seed mod 2^32)."""
    bg = np.random.MT19937()
    bg._legacy_seeding(seed & 0xFFFFFFFF)
    raw = bg.random_raw(n).astype(np.uint64)
    return (raw & 0xFFFFFF).astype(np.float32) * np.float32(2.0**-24)


def add_rng(store: FixtureStore) -> None:
    u = torch.rand(4096, generator=torch.Generator("cpu").manual_seed(0))
    assert np.allclose(u[:3].numpy(), RNG_FIRST, atol=5e-9, rtol=0), u[:3]
    assert np.array_equal(u.numpy(), mt19937_uniforms(0, 4096))
    for seed in [42, 2**32 + 5]:
        v = torch.rand(4096, generator=torch.Generator("cpu").manual_seed(seed))
        assert np.array_equal(v.numpy(), mt19937_uniforms(seed, 4096)), seed
    store.add("rng.torch_rand_seed0_first4096", u, "torch.rand(4096, generator=torch.Generator('cpu').manual_seed(0))")
