"""interp_lib: the package of the course "How do neural networks 'think'?".

Infrastructure (data, models, plotting, helpers) plus one module per topic whose
exercise functions you implement. See README.md and ``python -m interp_lib check``.
"""

__version__ = "0.1.0"


def _register_lesson_runner() -> None:
    # inside a notebook kernel, a lesson runs to the end past unwritten exercises
    from . import lesson

    lesson.register()


_register_lesson_runner()
