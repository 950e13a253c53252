"""Vanity flags: activity that looks like progress while the value it should create does not move.

``settings`` holds the thresholds; ``rollups`` rolls the fact tables up to one row per team × window of
calendar quarters and per series × week; ``detectors`` is one pure function per pattern over those
roll-ups, with ``detect_all`` running them together; ``charts`` gives the series behind a flag and
``acknowledgements`` keeps who acknowledged which flag. The trend and tail statistics are ``core.stats``.
"""
