"""What does sizeup's embedded provider cost over llama.cpp itself, and what does its monitor cost?

1. Decode speed of the same GGUF, same chat prompt, same max_tokens, greedy, on the same machine:
   A = sizeup's EmbeddedClient (its own llama.cpp server process, streamed over loopback HTTP),
   B = llama-cpp-python called directly in this process (`create_chat_completion`, streamed).
   The server's sampling defaults are passed to B too (repeat_penalty 1.1), so both produce the same
   tokens; the prompt asks for a long story so that neither stops before max_tokens. Runs alternate
   A B A B ... after one warm-up each; decode tokens/s = (completion_tokens - 1) / (total - ttft), as vLLM
   defines it (the first token arrives at ttft; the other n - 1 come after it). The median per side is
   reported, and the ratio is the median of each round's embedded/raw ratio (paired, so that drift in the
   machine's load cancels).
2. Monitor overhead: CPU time of the Monitor's sampler thread (its own thread clock) while it watches the
   model server at 20 Hz for a fixed window, as % of one core.

    python benchmarks/inference_bench.py [--model smollm2:135m] [--max-tokens 128] [--rounds 5]
                                         [--monitor-s 10] [--threads N] [--json] [--also-llama-cpp-server]

`--also-llama-cpp-server` adds a third side, llama-cpp-python's own `llama_cpp.server` read by the same
client, which sizeup's embedded server replaced (see sizeup/models/llama_server.py for why).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from sizeup.cli import runner
from sizeup.models.bundled import gguf_path
from sizeup.models.embedded import EmbeddedClient, EmbeddedServer
from sizeup.models.openai_compat import OpenAICompatClient
from sizeup.models.types import GenerationParams, Prompt
from sizeup.monitor import Monitor
from sizeup.records import Attempt

USER = "Write a long story about a dragon who learns to program. Make it at least 1000 words."
SERVER_REPEAT_PENALTY = 1.1  # the embedded server's default (llama_cpp.server's), which the client leaves in place


def decode_rate(tokens: int, total_s: float, ttft_s: float | None) -> float | None:
    """The figure a run stores (sizeup.cli.runner.decode_rate), for one call timed by the client."""
    if ttft_s is None:
        return None
    return runner.decode_rate([Attempt(attempt_id="0", completion_tokens=tokens, decode_s=total_s - ttft_s)])


def run_embedded(client: EmbeddedClient | OpenAICompatClient, max_tokens: int) -> tuple[int, float | None]:
    usage = client.generate(
        Prompt(system="", user=USER, completion=""), GenerationParams(max_tokens=max_tokens, temperature=0)
    ).usage
    return usage.completion_tokens, decode_rate(usage.completion_tokens, usage.total_s, usage.ttft_s)


def run_raw(llm, max_tokens: int) -> tuple[int, float | None]:
    started = time.perf_counter()
    ttft, tokens = None, 0
    stream = llm.create_chat_completion(
        messages=[{"role": "user", "content": USER}],
        max_tokens=max_tokens,
        temperature=0,
        repeat_penalty=SERVER_REPEAT_PENALTY,
        stream=True,
    )
    for chunk in stream:  # one token per chunk, as the server streams it
        if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
            ttft = ttft if ttft is not None else time.perf_counter() - started
            tokens += 1
    return tokens, decode_rate(tokens, time.perf_counter() - started, ttft)


def monitor_overhead_pct(pids: list[int], window_s: float, hz: float = 20.0) -> float:
    with Monitor(pids, hz=hz) as monitor:
        time.sleep(window_s)
    return 100.0 * monitor.sampler_cpu_s / monitor.summary.wall_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2:135m")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--monitor-s", type=float, default=10.0)
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="llama.cpp threads, both sides (default: all cores; 1 is steadier on a busy machine)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--also-llama-cpp-server", action="store_true", help="a third side: llama_cpp.server")
    args = parser.parse_args()
    from llama_cpp import Llama

    threads = args.threads
    client = EmbeddedClient(args.model, n_threads=threads)
    llm = Llama(model_path=str(gguf_path(args.model)), n_ctx=2048, n_threads=threads, verbose=False)
    sides = {"embedded": lambda: run_embedded(client, args.max_tokens), "raw": lambda: run_raw(llm, args.max_tokens)}
    other = other_client = None
    if args.also_llama_cpp_server:
        other = EmbeddedServer(gguf_path(args.model), args.model, n_threads=threads, server="llama_cpp")
        other_client = OpenAICompatClient(args.model, f"{other.url}/v1", style=client.style)
        sides["llama_cpp.server"] = lambda: run_embedded(other_client, args.max_tokens)
    try:
        for run_side in sides.values():  # warm-ups, not timed
            run_side()
        rates: dict[str, list[float]] = {side: [] for side in sides}
        tokens: dict[str, list[int]] = {side: [] for side in sides}
        # side/raw within one round: neighbours in time share the machine's load
        paired: dict[str, list[float]] = {side: [] for side in sides if side != "raw"}
        for _ in range(args.rounds):
            round_rates = {}
            for side, run_side in sides.items():
                count, rate = run_side()
                tokens[side].append(count)
                if rate is not None:
                    rates[side].append(rate)
                    round_rates[side] = rate
            for side in paired:
                if side in round_rates and "raw" in round_rates:
                    paired[side].append(round_rates[side] / round_rates["raw"])
        overhead = monitor_overhead_pct(client.server_pids(), args.monitor_s)
    finally:
        client.close()
        llm.close()
        if other is not None:
            other_client.close()
            other.stop()
    median = {side: statistics.median(values) if values else None for side, values in rates.items()}
    ratios = {side: statistics.median(values) if values else None for side, values in paired.items()}
    ratio = ratios["embedded"]
    same_tokens = len({count for counts in tokens.values() for count in counts}) == 1
    print(f"model {args.model}, {threads} threads, max_tokens {args.max_tokens}, {args.rounds} rounds, interleaved")
    for side in rates:
        spread = ", ".join(f"{rate:.1f}" for rate in rates[side])
        print(
            f"  {side:9s} decode tok/s median {median[side] or float('nan'):7.1f}  (runs: {spread}; "
            f"tokens {tokens[side]})"
        )
    for side, side_ratio in ratios.items():
        print(
            f"  ratio {side}/raw, median of the rounds' ratios {side_ratio:.3f} (rounds: "
            f"{', '.join(f'{r:.2f}' for r in paired[side])})"
            if side_ratio
            else f"  ratio {side}/raw: n/a"
        )
    if not same_tokens:
        print("  note: the sides generated different token counts; tokens/s still compares", file=sys.stderr)
    print(f"  monitor sampler at 20 Hz over {args.monitor_s:.0f} s: {overhead:.3f} % of one core")
    if args.json:
        out = {
            "tokens_per_s": median,
            "ratio_embedded_to_raw": ratio,
            "monitor_overhead_pct": overhead,
            "completion_tokens": tokens,
            "same_token_counts": same_tokens,
            "paired_ratios": paired["embedded"],
            "model": args.model,
            "threads": threads,
        }
        if "llama_cpp.server" in ratios:
            out["ratio_llama_cpp_server_to_raw"] = ratios["llama_cpp.server"]
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
