"""The model-client contract: a prompt in, text plus usage out."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class PromptStyle(StrEnum):
    CHAT = "chat"  # instruct models: system + user messages
    COMPLETION = "completion"  # base models: a text to continue


@dataclass(frozen=True)
class Prompt:
    """A prompt in both shapes; the client sends the one its model understands."""

    system: str
    user: str
    completion: str  # the same request written as a document for a base model to continue
    stop: tuple[str, ...] = ()  # stop sequences for completion-style prompts

    def messages(self) -> list[dict[str, str]]:
        """The chat form: the system message (if any) and the user's."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, {"role": "user", "content": self.user}]

    def as_text(self, style: PromptStyle) -> str:
        if style is PromptStyle.COMPLETION:
            return self.completion
        return f"{self.system}\n\n{self.user}" if self.system else self.user


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = None
    top_p: float | None = None


COMPLETION_ONLY = "counted-completion-only"  # Usage.source when prompt tokens could not be known


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None  # time to first token (streaming), None when not observed
    total_s: float = 0.0  # wall time of the whole call, seen by the client
    load_s: float | None = None  # model load charged to this call, when the server says so
    prompt_eval_s: float | None = None  # server-side prefill time, when reported
    eval_s: float | None = None  # server-side decode time, when reported
    # "server": counts reported by the server; "counted-completion-only": completion tokens counted by
    # sizeup from the stream, prompt tokens unknown.
    source: str = "server"


@dataclass
class Completion:
    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None  # "stop", "length", ...


class ModelError(RuntimeError):
    """The provider failed (server down, model missing, malformed reply): one line for the user."""


class TransientModelError(ModelError):
    """A failure worth retrying: the server could not be reached, or answered 5xx."""


class ModelClient(ABC):
    """One model behind one provider. Thread-safe: branches call it concurrently."""

    model: str  # the name the user gave
    style: PromptStyle = PromptStyle.CHAT
    provider: str = "abstract"

    @abstractmethod
    def generate(self, prompt: Prompt, params: GenerationParams = GenerationParams()) -> Completion:
        """One call. Raises ModelError for anything that is the provider's fault."""

    def server_pids(self) -> list[int]:
        """Local processes serving this model alone, charged to it (the monitor adds their children); empty
        if remote or unknown."""
        return []

    def shared_server_pids(self) -> list[int]:
        """Local processes that serve this model and others too (Ollama's `ollama serve`, whose runners are
        the models'): measured apart, without their children, and charged to no side."""
        return []

    def attribution(self) -> str:
        """How server_pids were found, stored beside the server figures."""
        return "not_measurable (no local server process known)"

    def load_info(self) -> dict[str, Any]:
        """Model load / warm-up figures measured apart from tasks (seconds, MB). The runner calls it once
        before the first task; the default warms the model up with one tiny call, so that the first
        task is not charged for loading it."""
        return self.warm_up()

    def warm_up(self) -> dict[str, Any]:
        started = time.perf_counter()
        reply = self.generate(Prompt("", "Hi", "Hi"), GenerationParams(max_tokens=1))
        info: dict[str, Any] = {"warmup_s": time.perf_counter() - started}
        if reply.usage.load_s is not None:
            info["load_s"] = reply.usage.load_s
        return info

    def close(self) -> None:  # noqa: B027
        pass

    def __enter__(self) -> ModelClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
