"""ipywidgets explorers used by the lessons, one module per topic.

Explorers are silent: they draw into an ``Output`` widget and never print from a
callback (nbval would see the prints as unexpected output).
"""
