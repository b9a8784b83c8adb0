"""ovss-tiny, the embedded CLIP: its training recipe on ShapesWorld and the checks behind its model card.

It sits above the pipeline it trains for: the recipe pools regions the way the dense heads and
MLMP read them (``adaptation``), and the quality report scores them (``evaluation``). ShapesWorld
itself (``ovss.world``) only generates data and depends on nothing above ``model``.
"""
