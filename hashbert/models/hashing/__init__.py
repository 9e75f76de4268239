"""Hashing models: HashingHead, the HashHeads of Hash-BERT, HashBert, LSH / sign / ITQ and code scoring."""
