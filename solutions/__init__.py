"""Reference bodies of every exercise, under the same module and function names.

The specification of each function is the docstring of its stub in ``interp_lib``.
Not part of the student release.
"""
