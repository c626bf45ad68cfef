"""Model clients: the embedded llama.cpp default, Ollama, and any OpenAI-compatible server, by provider name.

Providers are a registry: `register_provider("name")` on a factory that takes the model name and the
keyword settings of `ProviderSettings`; the built-in ones are imported only when used."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sizeup.models.types import (
    Completion,
    GenerationParams,
    ModelClient,
    ModelError,
    Prompt,
    PromptStyle,
    Usage,
)

__all__ = [
    "Completion",
    "GenerationParams",
    "ModelClient",
    "ModelError",
    "Prompt",
    "PromptStyle",
    "Usage",
    "DEFAULT_MODELS",
    "PROVIDERS",
    "ProviderSettings",
    "make_client",
    "register_provider",
]

# Defaults per provider: (large, small). With --url and no model flags the seed's Ollama pair applies.
DEFAULT_MODELS = {
    "embedded": ("gemma3:270m", "smollm2:135m"),
    "ollama": ("deepseek-r1:7b", "qwen:0.5b"),
}


@dataclass(frozen=True)
class ProviderSettings:
    """What the command line says about where and how models are served; each provider takes what it needs."""

    url: str | None = None
    style: PromptStyle | None = None  # None: the provider decides (bundled table, the model's template, chat)
    pull: bool = False
    api_key_env: str = "OPENAI_API_KEY"
    n_ctx: int | None = None
    n_threads: int | None = None
    server_pid: int | None = None


ProviderFactory = Callable[[str, ProviderSettings], ModelClient]
PROVIDERS: dict[str, ProviderFactory] = {}


def register_provider(name: str) -> Callable[[ProviderFactory], ProviderFactory]:
    def add(factory: ProviderFactory) -> ProviderFactory:
        PROVIDERS[name] = factory
        return factory

    return add


def load_plugins() -> None:
    """Import the modules named in $SIZEUP_PLUGINS (comma-separated): a provider of one's own registers
    itself there, in every process that needs it (workers, Ray actors)."""
    import importlib

    for name in filter(None, (part.strip() for part in os.environ.get("SIZEUP_PLUGINS", "").split(","))):
        importlib.import_module(name)


def check_provider(provider: str) -> None:
    """Refuse an unknown provider before anything is started or stored (plugins loaded first)."""
    if provider not in PROVIDERS:
        load_plugins()
    if provider not in PROVIDERS:
        raise ModelError(f"unknown provider '{provider}': use {', '.join(sorted(PROVIDERS))}")


def make_client(provider: str, model: str, **settings: Any) -> ModelClient:
    """The client for one model of one provider."""
    check_provider(provider)
    return PROVIDERS[provider](model, ProviderSettings(**settings))


@register_provider("embedded")
def _embedded(model: str, s: ProviderSettings) -> ModelClient:
    from sizeup.models.embedded import EmbeddedClient

    sized = {"n_ctx": s.n_ctx} if s.n_ctx else {}  # else the client's own default
    return EmbeddedClient(model, n_threads=s.n_threads, style=s.style, **sized)


@register_provider("ollama")
def _ollama(model: str, s: ProviderSettings) -> ModelClient:
    from sizeup.models.ollama import DEFAULT_URL, OllamaClient

    # style None: from the model's template (a bare `{{ .Prompt }}` is a base model: completion-style).
    return OllamaClient(
        model,
        s.url or DEFAULT_URL,
        style=s.style,
        pull=s.pull,
        num_ctx=s.n_ctx,
        num_thread=s.n_threads,
        server_pid=s.server_pid,
    )


@register_provider("openai")
def _openai(model: str, s: ProviderSettings) -> ModelClient:
    from sizeup.models.openai_compat import OpenAICompatClient

    if not s.url:
        raise ModelError("--provider openai needs --url, e.g. http://127.0.0.1:8000/v1")
    return OpenAICompatClient(
        model,
        s.url,
        style=s.style or PromptStyle.CHAT,
        api_key=os.environ.get(s.api_key_env, "sk-no-key-needed"),
        server_pid=s.server_pid,
    )
