"""Task registry: every kind of job `seqlab train` can run, registered explicitly."""

from __future__ import annotations

from seqlab.registry import Registry
from seqlab.tasks.base import Task
from seqlab.tasks.bow_classify import BowClassifyTask
from seqlab.tasks.char_mlp_lm import CharMLPLMTask

TASKS: Registry[Task] = Registry("task")
TASKS.register("bow_classify", BowClassifyTask())
TASKS.register("lm_char_mlp", CharMLPLMTask())

__all__ = ["TASKS", "Task"]
