"""A task from a free-text description: no tests, so its verdict can only be "unverified"."""

from __future__ import annotations

import hashlib

from sizeup.tasks.types import Task


def free_text_task(text: str) -> Task:
    """Wrap a user's description; the id is derived from the text so the same text gets the same id."""
    if not text.strip():
        raise ValueError("the task description is empty")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return Task(task_id=f"freetext/{digest}", source="freetext", prompt=text)
