"""Duplicate rows in text tables: exact, near (MinHash-LSH) and semantic (SemDeDup)
deduplication of a version, and the overlap (contamination) of an evaluation set by training
data.

``opsloop data dedup`` and ``opsloop data overlap`` (and ``client.data.dedup`` /
``.overlap``) run :mod:`.service` where the blobs are; it reads the table (:mod:`.rows`) and
hands lists of texts to :mod:`.engine`, which normalises and hashes them (:mod:`.text`),
signs them (:mod:`.minhash`), bands the signatures (:mod:`.lsh`), embeds and clusters them
by meaning (:mod:`.semantic`, with the embedder of :mod:`.ports` handed in from above) and
clusters the verified pairs (:mod:`.clusters`).

The package is named ``duplicates``, not ``dedup``: ``opsloop.data.dedup`` is the module-level
function, which a subpackage of that name would replace on first import.

Next slices: exact substrings (a suffix array) for long documents; Ray for tables larger than
one machine (signatures per partition, bands shuffled by key, clusters merged) and spilling
to disk.

Nothing is imported here, so that naming the request shapes (``.entities``) does not load
numpy.
"""
