"""hashbert.models"""
