"""Public image-to-image generators written as a user's own code would be (tests of automatic
elastic conversion, models/traced.py). Each follows its published definition - layer order,
state-dict key layout, defaults - with the width a constructor argument so tests run tiny.
gancompress knows none of them: the tests convert them with zero lines of per-model code.
"""
