"""Word count over objects in storage: the map gets one range of an object
(cbcore_objects.ObjectRange, whole lines with "split": "lines") and counts its
words as `wc -w` does (runs of ASCII whitespace); the reduce adds the counts."""


def count_words(obj):
    return len(obj.read().split())


def add_counts(counts):
    return sum(counts)
