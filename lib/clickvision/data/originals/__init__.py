"""Loaders for the original data sets of the four papers (for users who have the files).

None of these sets can be downloaded here; each loader reads the set in its original
on-disk layout (documented in the loader's module) and returns the same object the
embedded sets return, so a notebook switches data by one parameter:

=====================  ==========================================  =================
data set               loader                                      returns
=====================  ==========================================  =================
Clickture click log    :func:`iter_click_log` (streams)            ClickRecord rows
Clickture images       :func:`load_clickture_images`               ImageSet
Clickture Dev          :func:`read_dev`                            DataFrame
Stanford Dogs          :func:`load_stanford_dogs`                  ImageSet
CUB-200-2011           :func:`load_cub`                            ImageSet
Wikipedia              :func:`load_wikipedia`                      ImageSet + text
NUS-WIDE-10k           :func:`load_nus_wide_10k`                   ImageSet + text
Pascal Sentences       :func:`load_pascal_sentences`               ImageSet + text
Amazon reviews + meta  :func:`load_amazon`                         Interactions
=====================  ==========================================  =================

MovieLens' original formats are read by :mod:`clickvision.data.movielens`.
Bad input raises :class:`~clickvision.data.base.DataError` naming the file (and line);
a missing source raises :class:`~clickvision.data.base.MissingSourceError` saying how to
get it. Image loaders take ``verify="exists"`` (default: every file must exist),
``"decode"`` (every file is decoded once, slow on full sets) or ``"none"``.
"""
from .amazon import iter_metadata, iter_records, iter_reviews, load_amazon  # noqa: F401
from .clickture import (CLICKTURE_COLUMNS, JUDGMENT_RELEVANCE, MSR_TRAIN_COLUMNS,  # noqa: F401
                        ClickRecord, iter_click_log, iter_image_bytes, iter_images,
                        load_clickture_images, read_dev, read_dev_set, write_click_log)
from .crossmodal import load_nus_wide_10k, load_pascal_sentences, load_wikipedia  # noqa: F401
from .cub import load_cub  # noqa: F401
from .stanford_dogs import load_stanford_dogs  # noqa: F401

__all__ = [
    "CLICKTURE_COLUMNS", "MSR_TRAIN_COLUMNS", "JUDGMENT_RELEVANCE", "ClickRecord",
    "iter_click_log", "write_click_log", "read_dev", "read_dev_set", "iter_image_bytes",
    "iter_images", "load_clickture_images", "load_stanford_dogs", "load_cub", "load_wikipedia",
    "load_nus_wide_10k", "load_pascal_sentences", "iter_records", "iter_reviews",
    "iter_metadata", "load_amazon",
]
