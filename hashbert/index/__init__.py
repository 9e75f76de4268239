"""hashbert.index"""
