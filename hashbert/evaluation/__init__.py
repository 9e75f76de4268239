"""hashbert.evaluation"""
