"""hashbert.data"""
