"""hashbert.losses"""
