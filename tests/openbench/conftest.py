import numpy as np
import pytest


class StubSimilarity:
    """Text similarity from a hand table (symmetric; a name is 1.0 to itself, 0.0 to anything unlisted)."""

    def __init__(self, table):
        self.table = {}
        for (a, b), v in table.items():
            self.table[(a, b)] = self.table[(b, a)] = v
        self.calls = 0

    def __call__(self, a, b):
        self.calls += 1
        return np.array([[1.0 if x == y else self.table.get((x, y), 0.0) for y in b] for x in a])


@pytest.fixture
def stub_similarity():
    return StubSimilarity({("lion", "cat"): 0.8, ("lion", "dog"): 0.6, ("truck", "cat"): 0.2, ("truck", "dog"): 0.3,
                           ("zebra", "cat"): 0.1, ("zebra", "dog"): 0.4})
