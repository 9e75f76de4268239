"""hashbert.training"""
