"""Tasks: the Task record, the dataset loaders, the built-in tasks and free-text tasks."""

from sizeup.tasks.builtin import TASK_TYPES, builtin_task, builtin_tasks
from sizeup.tasks.freetext import free_text_task
from sizeup.tasks.loaders import (
    humaneval_package_path,
    load_humaneval,
    load_humaneval_package,
    load_mbpp,
    load_tasks_file,
    mbpp_entry_point,
    split_humaneval_test,
)
from sizeup.tasks.types import Task, TaskFormatError

__all__ = [
    "TASK_TYPES",
    "Task",
    "TaskFormatError",
    "builtin_task",
    "builtin_tasks",
    "free_text_task",
    "humaneval_package_path",
    "load_humaneval",
    "load_humaneval_package",
    "load_mbpp",
    "load_tasks_file",
    "mbpp_entry_point",
    "split_humaneval_test",
]
