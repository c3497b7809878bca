"""One FastVID run inside real vLLM, offline (``LLM.chat``) or served (the OpenAI server, one chat request).

Runs under the vLLM venv's Python (``scripts/vllm-e2e`` calls it); writes one JSON object to ``--out`` (vLLM
logs on stdout):
``family``, ``mode``, ``rate``, ``tokens`` (the answer's token ids of each of two identical requests),
``prompt_tokens``, ``deterministic`` and ``seconds``. FastVID's own record of each pruned video (tokens
before and after, vLLM's budget, pruning ms, its features) goes to ``$FASTVID_VLLM_TRACE``.

    python run.py --family qwen3_vl --checkpoint DIR --video clip.mp4 --rate 0.75 --mode offline --out run.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ARCHITECTURES = {
    "qwen2_5_vl": "FastVIDQwen2_5_VLForConditionalGeneration",
    "qwen3_vl": "FastVIDQwen3VLForConditionalGeneration",
    "qwen3_5": "FastVIDQwen3_5ForConditionalGeneration",
    "qwen3_vl_moe": "FastVIDQwen3VLMoeForConditionalGeneration",
    "qwen3_5_moe": "FastVIDQwen3_5MoeForConditionalGeneration",
}
QUESTION = "What happens in this video?"
MAX_TOKENS = 8
ENGINE = {"dtype": "bfloat16", "max_model_len": 8192, "enforce_eager": True, "gpu_memory_utilization": 0.2}
"""Engine settings of every run: tiny models, the CPU runner; 20 % of memory for vLLM's CPU KV cache."""


def messages(video: Path) -> list[dict]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "video_url", "video_url": {"url": video.resolve().as_uri()}},
                {"type": "text", "text": QUESTION},
            ],
        }
    ]


def offline(args: argparse.Namespace) -> dict:
    from vllm import LLM, SamplingParams

    llm = LLM(
        model=str(args.checkpoint),
        hf_overrides={"architectures": [ARCHITECTURES[args.family]]},
        video_pruning_rate=args.rate,
        limit_mm_per_prompt={"video": 1, "image": 0},
        allowed_local_media_path=str(args.video.resolve().parent),
        mm_processor_cache_gb=0,
        **ENGINE,
    )
    params = SamplingParams(temperature=0, max_tokens=MAX_TOKENS)
    outputs = [llm.chat(messages(args.video), params)[0] for _ in range(2)]
    return {"tokens": [list(o.outputs[0].token_ids) for o in outputs], "prompt_tokens": len(outputs[0].prompt_token_ids)}


def served(args: argparse.Namespace) -> dict:
    with socket.socket() as probe:  # a free port on the loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(args.checkpoint),
        "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "tiny",
        "--hf-overrides", json.dumps({"architectures": [ARCHITECTURES[args.family]]}),
        "--video-pruning-rate", str(args.rate), "--limit-mm-per-prompt", json.dumps({"video": 1, "image": 0}),
        "--allowed-local-media-path", str(args.video.resolve().parent), "--mm-processor-cache-gb", "0",
        "--dtype", ENGINE["dtype"], "--max-model-len", str(ENGINE["max_model_len"]), "--enforce-eager",
        "--gpu-memory-utilization", str(ENGINE["gpu_memory_utilization"]),
    ]  # fmt: skip
    with open(args.log or os.devnull, "w") as log:
        return _serve_and_ask(args, command, port, log)


def _serve_and_ask(args: argparse.Namespace, command: list[str], port: int, log) -> dict:
    """Start the server, wait for it, send the same chat request twice, stop it."""
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 600
        while True:  # bounded: the server is up, or it died, or ten minutes passed
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with {server.returncode} (log: {args.log})")
            try:
                urllib.request.urlopen(f"{base}/health", timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not come up in 600 s") from None
                time.sleep(2)
        body = {"model": "tiny", "messages": messages(args.video), "temperature": 0, "max_tokens": MAX_TOKENS, "logprobs": True}
        tokens, prompt = [], 0
        for _ in range(2):
            request = urllib.request.Request(
                f"{base}/v1/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
            )
            reply = json.load(urllib.request.urlopen(request, timeout=300))
            tokens.append([item["token"] for item in reply["choices"][0]["logprobs"]["content"]])
            prompt = reply["usage"]["prompt_tokens"]
        return {"tokens": tokens, "prompt_tokens": prompt}
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(ARCHITECTURES), required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--mode", choices=("offline", "served"), required=True)
    parser.add_argument("--log", help="the server's log (served)")
    parser.add_argument("--out", type=Path, required=True, help="where the JSON result goes")
    args = parser.parse_args()
    start = time.perf_counter()
    result = offline(args) if args.mode == "offline" else served(args)
    result |= {
        "family": args.family,
        "mode": args.mode,
        "rate": args.rate,
        "deterministic": result["tokens"][0] == result["tokens"][1],
        "seconds": round(time.perf_counter() - start, 1),
    }
    args.out.write_text(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
