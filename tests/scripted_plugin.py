"""A model provider for tests that run in other processes (workers, Ray actors): $SIZEUP_PLUGINS names this
module, and each process imports it and gets the `scripted-plugin` provider. Its models reply by name:
"passer" solves every task, "half" never does, "sleeper" solves slowly (for killing a worker mid-task, or
watching a run live), "stagger" solves task 0 fast and the others slowly (so that when task 0 comes back, the
other worker is surely mid-task), "evil" solves it with a reply that carries markup a page must show as text."""

from __future__ import annotations

import time

from sizeup.models import register_provider
from sizeup.models.types import Completion, GenerationParams, ModelClient, Prompt, PromptStyle, Usage

EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">\n'
REPLIES = {
    "passer": "def answer_for(x):\n    return x\n",
    "half": "def answer_for(x):\n    return -1\n",
    "sleeper": "def answer_for(x):\n    return x\n",
    "stagger": "def answer_for(x):\n    return x\n",
}


class PluginClient(ModelClient):
    provider = "scripted-plugin"

    def __init__(self, model: str):
        self.model, self.style = model, PromptStyle.CHAT

    def generate(self, prompt: Prompt, params: GenerationParams = GenerationParams()) -> Completion:
        if self.model == "sleeper" and prompt.user != "Hi":
            time.sleep(3.0)
        if self.model == "stagger" and prompt.user != "Hi":
            time.sleep(0.5 if "(task 0)" in prompt.user else 4.0)
        code = REPLIES["passer" if self.model == "evil" else self.model]
        markup = EVIL if self.model == "evil" else ""
        reply = f"{markup}```python\n{code}```"
        return Completion(reply, Usage(prompt_tokens=5, completion_tokens=7, total_s=0.01), "stop")


@register_provider("scripted-plugin")
def _provider(model: str, settings) -> ModelClient:
    return PluginClient(model)
