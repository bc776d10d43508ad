"""Word embeddings: word2vec training, vector files, evaluation and pretrained loading."""
