"""ADE20K (SceneParsing 150) from ``ADEChallengeData2016.zip``: already in the evaluation layout.

The zip holds ``ADEChallengeData2016/{images,annotations}/{training,validation}`` with labels 0..150
(0 = other, removed by ``reduce_zero_label`` when reading); the split's files are copied unchanged.
"""
from __future__ import annotations

from .jobs import Downloads, Job, matching, require_pairs

ADE_ZIP = "ADEChallengeData2016.zip"
SPLIT_DIRS = {"train": "training", "val": "validation"}


def ade_jobs(downloads: Downloads, split: str) -> list[Job]:
    zipped = downloads.archive(ADE_ZIP)
    folder = SPLIT_DIRS.get(split, split)
    images = matching(zipped, f"ADEChallengeData2016/images/{folder}/", ".jpg")
    labels = matching(zipped, f"ADEChallengeData2016/annotations/{folder}/", ".png")
    names = require_pairs(images, labels, zipped, folder)

    def copy(member: str):
        return lambda: zipped.read(member)

    jobs = []
    for n in names:
        jobs.append(Job(f"images/{folder}/{n}.jpg", copy(images[n]), (0, zipped.members[images[n]].order)))
        jobs.append(Job(f"annotations/{folder}/{n}.png", copy(labels[n]), (0, zipped.members[labels[n]].order)))
    return jobs
