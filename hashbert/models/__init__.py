"""Models by family: the text encoder, DR-BERT and the registry here; hashing/, hdr/ and cross/ hold the rest."""
