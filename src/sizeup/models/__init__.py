"""Model clients: the embedded llama.cpp default, Ollama, and any OpenAI-compatible server."""

from __future__ import annotations

import os

from sizeup.models.types import (
    Completion,
    GenerationParams,
    ModelClient,
    ModelError,
    Prompt,
    PromptStyle,
    Usage,
)

__all__ = ["Completion", "GenerationParams", "ModelClient", "ModelError", "Prompt", "PromptStyle", "Usage",
           "make_client", "DEFAULT_MODELS"]

# Defaults per provider: (large, small). With --url and no model flags the seed's Ollama pair applies.
DEFAULT_MODELS = {
    "embedded": ("gemma3:270m", "smollm2:135m"),
    "ollama": ("deepseek-r1:7b", "qwen:0.5b"),
}


def make_client(provider: str, model: str, *, url: str | None = None, style: PromptStyle | None = None,
                pull: bool = False, api_key_env: str = "OPENAI_API_KEY", n_ctx: int | None = None,
                n_threads: int | None = None, server_pid: int | None = None) -> ModelClient:
    """Build the client for one model; the only place that knows every provider."""
    if provider == "embedded":
        from sizeup.models.embedded import EmbeddedClient

        sized = {"n_ctx": n_ctx} if n_ctx else {}  # else the client's own default
        return EmbeddedClient(model, n_threads=n_threads, style=style, **sized)
    if provider == "ollama":
        from sizeup.models.ollama import DEFAULT_URL, OllamaClient

        # style None: from the model's template (a bare `{{ .Prompt }}` is a base model: completion-style).
        return OllamaClient(model, url or DEFAULT_URL, style=style, pull=pull, num_ctx=n_ctx, num_thread=n_threads,
                            server_pid=server_pid)
    if provider == "openai":
        from sizeup.models.openai_compat import OpenAICompatClient

        if not url:
            raise ModelError("--provider openai needs --url, e.g. http://127.0.0.1:8000/v1")
        return OpenAICompatClient(model, url, style=style or PromptStyle.CHAT,
                                  api_key=os.environ.get(api_key_env, "sk-no-key-needed"), server_pid=server_pid)
    raise ModelError(f"unknown provider '{provider}': use embedded, ollama or openai")
