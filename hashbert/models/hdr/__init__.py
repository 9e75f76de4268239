"""HDR-BERT: HdrModel, its aggregators, the incremental HdrCache and HDR hashing (HdrHash)."""
