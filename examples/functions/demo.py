"""The demo's functions: plain Python, as a data scientist writes them."""


def add7(x):
    return x + 7


def total(xs):
    return sum(xs)
