"""Pair scorers: the cross-encoder (BERT, SA-BERT, BERT-FP), its post-training model and the causal-LM judge."""
