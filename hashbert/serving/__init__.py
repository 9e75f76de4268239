"""hashbert.serving"""
