"""ipywidgets explorers used by the lessons, one module per topic.

Explorers are silent: they draw into an ``Output`` widget and never print from a
callback (nbval would see the prints as unexpected output). They share the helpers
below: figures drawn off-screen (no pyplot state) at :data:`DPI` with text of at least
:data:`MIN_FONT` points, shown as a PNG in the ``Output`` widget (the last one is kept as
``out.figure`` for the tests), and one description width per explorer so that every
label sits right beside its control.
"""

from __future__ import annotations

import io

#: resolution of the explorers' figures (dots per inch)
DPI = 110
#: smallest text size (points) in an explorer's figure
MIN_FONT = 8
#: text sizes used by the explorers (points)
TITLE_FONT, LABEL_FONT = 10, 9


def figure(figsize: tuple[float, float]):
    """A matplotlib ``Figure`` off pyplot (nothing reaches the notebook by itself)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=DPI)


def show(out, fig) -> None:
    """Replace what the ``Output`` widget ``out`` shows by ``fig`` as a PNG at :data:`DPI`."""
    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    out.figure = fig
    out.outputs = ()
    out.append_display_data(Image(buf.getvalue()))


def description_style(width: str) -> dict:
    """``style=`` for every control of one explorer: the same description width, so the
    labels line up and each sits next to its control (toggle buttons included)."""
    return {"description_width": width}


def redraw_on(draw, *controls, image=None, target=None, labels=None) -> None:
    """Call ``draw()`` now and again whenever one of ``controls`` changes value.

    With ``image`` (the image index control), ``target`` (the class control) and
    ``labels``: choosing another image first selects its true class in ``target`` and
    draws once (through ``target``'s change, or directly when that class is already
    selected), never twice."""

    def changed(_change=None):
        draw()

    for w in (*controls, target):
        if w is not None:
            w.observe(changed, names="value")
    if image is not None:

        def new_image(_change):
            label = int(labels[image.value])
            if target.value == label:
                draw()
            else:
                target.value = label  # its observer draws

        image.observe(new_image, names="value")
    draw()
