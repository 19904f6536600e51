"""The course machinery: the command line, the autograder and its sandbox, the student
release, slides, the benchmark, training and the pytest plugin.

Students never need to open this folder: the worksheets are the topic modules one level
up (``interp_lib/gradients.py`` and friends), beside the toolkit they use (data, models,
plot, utils, attribution, widgets). ``common`` sits below every command here; no
command imports another command's module at import time.
"""
