"""Task registry: every kind of job `seqlab train` can run, registered explicitly."""

from __future__ import annotations

from typing import Any

from seqlab.registry import Registry
from seqlab.tasks.autoencoder import AutoencoderTask
from seqlab.tasks.babi_qa import BabiQATask
from seqlab.tasks.base import Task
from seqlab.tasks.bow_classify import BowClassifyTask
from seqlab.tasks.caption import CaptionTask
from seqlab.tasks.char_mlp_lm import CharMLPLMTask
from seqlab.tasks.latent_gan import LatentGANTask
from seqlab.tasks.ngram_lm import NGramLMTask
from seqlab.tasks.rnn_lm import RNNLMTask
from seqlab.tasks.sentence_classify import SentenceClassifyTask
from seqlab.tasks.seq_autoencode import SeqAutoencodeTask
from seqlab.tasks.speech import SpeechTask
from seqlab.tasks.tagging import TaggingTask
from seqlab.tasks.translate import TranslateTask
from seqlab.tasks.tree_sentiment import TreeSentimentTask
from seqlab.tasks.word2vec import Word2VecTask

TASKS: Registry[Task[Any]] = Registry("task")
TASKS.register("bow_classify", BowClassifyTask())
TASKS.register("lm_char_mlp", CharMLPLMTask())
TASKS.register("lm_rnn", RNNLMTask())
TASKS.register("lm_ngram", NGramLMTask())
TASKS.register("word2vec", Word2VecTask())
TASKS.register("tagging", TaggingTask())
TASKS.register("classify", SentenceClassifyTask())
TASKS.register("ae_bow", AutoencoderTask())
TASKS.register("tree_sentiment", TreeSentimentTask())
TASKS.register("babi_qa", BabiQATask())
TASKS.register("speech", SpeechTask())
TASKS.register("caption", CaptionTask())
TASKS.register("seq_autoencode", SeqAutoencodeTask())
TASKS.register("translate", TranslateTask())
TASKS.register("latent_gan", LatentGANTask())

__all__ = ["TASKS", "Task"]
