"""Time diffusers 0.42.1's VQDiffusionPipeline at the microsoft/vq-diffusion-ithq size.

Random weights (the real checkpoint's FLOPs), built in memory from the hub configs, on one CUDA
device. Protocol: one 2-step warm-up call; the
transformer forward on an all-mask batch of 2 at t = 50, median of 5 calls after 2 warm-ups;
one sampling step after the transformer (guidance, truncation, clamp, scheduler.step); the VQ
decode of one image; whole 100-step guided calls timed wall-clock with synchronisation; peak =
torch.cuda.max_memory_allocated of the whole call.

Usage: python bench_diffusers.py --dtype fp16 --tokenizer fixtures/tiny/hub/tokenizer [--json out]
       python bench_diffusers.py --device cpu --dtype fp32 --layers 4 --reps 3   (CPU: forwards only)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

TRANSFORMER = dict(
    activation_fn="geglu-approximate", attention_bias=True, attention_head_dim=88, cross_attention_dim=512,
    dropout=0.0, norm_num_groups=32, num_attention_heads=16, num_embeds_ada_norm=100, num_layers=36,
    num_vector_embeds=4097, sample_size=32,
)
VQVAE = dict(
    act_fn="silu", block_out_channels=[64, 128, 256, 512],
    down_block_types=["DownEncoderBlock2D"] * 3 + ["AttnDownEncoderBlock2D"], in_channels=3, latent_channels=256,
    layers_per_block=2, norm_num_groups=32, num_vq_embeddings=4096, out_channels=3, sample_size=32,
    up_block_types=["AttnUpDecoderBlock2D"] + ["UpDecoderBlock2D"] * 3, vq_embed_dim=128,
)


def build(dtype: torch.dtype, tokenizer_dir: str, device: str):
    from diffusers import Transformer2DModel, VQDiffusionPipeline, VQDiffusionScheduler, VQModel
    from diffusers.pipelines.deprecated.vq_diffusion import LearnedClassifierFreeSamplingEmbeddings
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    torch.set_default_device(device)  # random init on the GPU: seconds instead of a minute
    pipe = VQDiffusionPipeline(
        vqvae=VQModel(**VQVAE),
        text_encoder=CLIPTextModel(CLIPTextConfig()),
        tokenizer=CLIPTokenizer.from_pretrained(tokenizer_dir),
        transformer=Transformer2DModel(**TRANSFORMER),
        scheduler=VQDiffusionScheduler(num_vec_classes=4097),
        learned_classifier_free_sampling_embeddings=LearnedClassifierFreeSamplingEmbeddings(
            learnable=True, hidden_size=512, length=77),
    )
    pipe.set_progress_bar_config(disable=True)
    torch.set_default_device("cpu")
    return pipe.to(device, dtype)


def forward_products(batch: int, text_len: int = 77) -> list[tuple[str, int, str, int, int, int, int]]:
    """The matrix products of one ITHQ transformer forward, as `xtask bench --what products` lists
    them: (name, count, form, groups, m, k, n) for `count` products [groups, m, k] x [groups, k, n]."""
    layers, heads, head_dim = TRANSFORMER["num_layers"], TRANSFORMER["num_attention_heads"], TRANSFORMER["attention_head_dim"]
    d, pixels, text_dim = heads * head_dim, TRANSFORMER["sample_size"] ** 2, TRANSFORMER["cross_attention_dim"]
    classes = TRANSFORMER["num_vector_embeds"] - 1
    return [
        ("self-attention q, k, v, out; cross-attention q, out", 6 * layers, "linear", batch, pixels, d, d),
        ("cross-attention k, v (caption tokens)", 2 * layers, "linear", batch, text_len, text_dim, d),
        ("feed-forward in", layers, "linear", batch, pixels, d, 4 * d),
        ("feed-forward out", layers, "linear", batch, pixels, 4 * d, d),
        ("AdaLayerNorm scale and shift (one row)", 2 * layers, "linear", batch, 1, d, 2 * d),
        ("output projection", 1, "linear", batch, pixels, d, classes),
        ("self-attention scores q·kᵀ", layers, "scores", batch * heads, pixels, head_dim, pixels),
        ("self-attention p·v", layers, "values", batch * heads, pixels, pixels, head_dim),
        ("cross-attention scores q·kᵀ", layers, "scores", batch * heads, pixels, head_dim, text_len),
        ("cross-attention p·v", layers, "values", batch * heads, pixels, text_len, head_dim),
    ]


def time_products(batch: int, dtype: torch.dtype, record) -> None:
    """Each kind of product of a forward alone, operands laid out as diffusers' layers lay them out
    (torch.matmul folds a Linear's batch into its rows; attention works on per-head views)."""
    total, flops = 0.0, 0.0
    for name, count, form, groups, m, k, n in forward_products(batch):
        randn = lambda *shape: torch.randn(*shape, device="cuda", dtype=dtype)
        if form == "linear":
            lhs, rhs = randn(groups, m, k), randn(k, n)
        elif form == "scores":
            lhs, rhs = randn(m, groups, k).transpose(0, 1), randn(n, groups, k).transpose(0, 1).transpose(1, 2)
        else:
            lhs, rhs = randn(groups, m, k), randn(k, groups, n).transpose(0, 1)
        outputs = []

        def run():
            outputs.clear()
            outputs.extend(torch.matmul(lhs, rhs) for _ in range(count))

        seconds = timed(run, 2, 5)
        outputs.clear()
        product_flops = 2.0 * count * groups * m * k * n
        total, flops = total + seconds, flops + product_flops
        record(f"products b{batch}: {name} ×{count} ({product_flops / seconds / 1e12:.0f} TFLOP/s)", seconds)
    record(f"products of one forward, batch {batch} ({flops / total / 1e12:.0f} TFLOP/s)", total)


def graphed_forward(pipe, latents, text, t):
    """The transformer forward captured once in a CUDA graph: replaying it launches no kernel from
    the host, so its time is the kernels' alone (what the eager forward would take with no launch
    overhead)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            pipe.transformer(latents, encoder_hidden_states=text, timestep=t)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        pipe.transformer(latents, encoder_hidden_states=text, timestep=t)
    return graph.replay


def timed(fn, warmup: int, reps: int) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dtype", choices=["fp32", "fp16", "tf32"], default="fp16")
    parser.add_argument("--tokenizer", default="fixtures/tiny/hub/tokenizer")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--images", default="1,4", help="images per prompt of the timed generations")
    parser.add_argument("--what", default="forward,step,decode,generate",
                        help="also: graph (the forward replayed from a CUDA graph), products (each kind of matrix "
                             "product of a forward alone, for 2 x each --images count)")
    parser.add_argument("--device", default="cuda", help="cuda, or cpu for the transformer forward on the CPU")
    parser.add_argument("--layers", type=int, default=36, help="transformer blocks (36 is the ITHQ model)")
    parser.add_argument("--reps", type=int, default=1, help="CPU forwards after one warm-up (median); 1: one cold call")
    parser.add_argument("--json")
    args = parser.parse_args()
    TRANSFORMER["num_layers"] = args.layers
    torch.backends.cuda.matmul.allow_tf32 = args.dtype == "tf32"
    torch.backends.cudnn.allow_tf32 = args.dtype == "tf32"
    dtype = torch.float16 if args.dtype == "fp16" else torch.float32
    pipe = build(dtype, args.tokenizer, args.device)
    if args.device == "cpu":
        with torch.no_grad():
            latents = torch.full((2, 1024), 4096, dtype=torch.long)
            text = torch.randn(2, 77, 512)
            times = []
            for _ in range(args.reps + (args.reps > 1)):
                start = time.perf_counter()
                pipe.transformer(latents, encoder_hidden_states=text, timestep=torch.tensor(50))
                times.append(time.perf_counter() - start)
            times = times[1:] if args.reps > 1 else times
            print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, CPU fp32, {args.layers} blocks")
            print(f"{'transformer forward, batch 2 (median)':<44} {statistics.median(times):>10.4f} s  "
                  f"all: {', '.join(f'{t:.3f}' for t in times)}", flush=True)
        return
    prompt = "teddy bear playing in the pool"
    results = []

    def record(name: str, seconds: float, peak: float | None = None) -> None:
        results.append(dict(name=name, seconds=seconds, peak_gib=peak))
        extra = f"  peak {peak:.2f} GiB" if peak is not None else ""
        print(f"{name:<44} {seconds:>10.4f} s{extra}", flush=True)

    print(f"# diffusers {__import__('diffusers').__version__}, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name()}, {args.dtype}", flush=True)
    pipe(prompt, num_inference_steps=2, output_type="np")
    with torch.no_grad():
        latents = torch.full((2, 1024), 4096, dtype=torch.long, device="cuda")
        text = torch.randn(2, 77, 512, device="cuda", dtype=dtype)
        t = torch.tensor(50, device="cuda")
        if "forward" in args.what:
            record("transformer forward, batch 2", timed(lambda: pipe.transformer(latents, encoder_hidden_states=text, timestep=t), 2, 5))
        if "graph" in args.what:
            record("transformer forward, batch 2, one CUDA graph", timed(graphed_forward(pipe, latents, text, t), 2, 5))
        for n in [int(i) for i in args.images.split(",")] if "products" in args.what else []:
            time_products(2 * n, dtype, record)

        log_p = torch.log_softmax(torch.randn(2, 4096, 1024, device="cuda") * 3, dim=1)
        sample = torch.full((1, 1024), 4096, dtype=torch.long, device="cuda")
        generator = torch.Generator("cuda").manual_seed(0)
        pipe.scheduler.set_timesteps(100, device="cuda")

        def step(rate: float):
            uncond, cond = log_p.chunk(2)
            guided = uncond + 5.0 * (cond - uncond)
            guided = guided - torch.logsumexp(guided, dim=1, keepdim=True)
            guided = pipe.truncate(guided, rate).clamp(-70)
            pipe.scheduler.step(guided, timestep=torch.tensor(50, device="cuda"), sample=sample, generator=generator)

        for rate in (1.0, 0.86) if "step" in args.what else ():
            record(f"sampling step, batch 1, truncation {rate}", timed(lambda: step(rate), 2, 5))
        ids = torch.randint(0, 4096, (1, 1024), device="cuda")

        def decode():
            emb = pipe.vqvae.quantize.get_codebook_entry(ids, shape=(1, 32, 32, 128))
            pipe.vqvae.decode(emb, force_not_quantize=True)

        if "decode" in args.what:
            record("VQ decode, 1 image 256×256", timed(decode, 2, 5))
    for n in [int(i) for i in args.images.split(",")] if "generate" in args.what else []:
        torch.cuda.reset_peak_memory_stats()
        seconds = timed(lambda: pipe(prompt, num_inference_steps=args.steps, num_images_per_prompt=n,
                                     generator=torch.Generator("cuda").manual_seed(0), output_type="np"), 0, 1)
        peak = torch.cuda.max_memory_allocated() / 2**30
        record(f"generate, {args.steps} steps, guidance 5, {n} image(s)", seconds, peak)
        record(f"  per image ({n} image(s))", seconds / n)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(backend=f"diffusers {args.dtype} {torch.cuda.get_device_name()}", results=results), f, indent=1)


if __name__ == "__main__":
    main()
