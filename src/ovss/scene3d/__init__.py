"""Open-vocabulary 3D instance classification with the OpenMask3D protocol (the 3D half of OpenDAS).

A reconstructed scene (points, posed RGB-D frames) and class-agnostic instance masks go in; every
mask gets a CLIP feature from crops of the frames that see it best, a label from any class list
(with or without OpenDAS prompts), and ScanNet-style AP measures the labels.
"""
