"""The book's verification framework: claims, chapters, the registry, reports.

No theory lives here. :mod:`~lrtheory.verify.claims` defines :class:`Claim`,
:class:`Tolerance` and :class:`Verdict`; :mod:`~lrtheory.verify.chapter` the
:class:`Chapter` a result package declares (configs per scale, measurements,
claims, sweeps); :mod:`~lrtheory.verify.registry` the one list of chapters from
which every claim and sweep derives; :mod:`~lrtheory.verify.report` the verdict
tables; :mod:`~lrtheory.verify.display` small notebook helpers.
"""
