"""Duplicate rows in text tables: exact and near (MinHash-LSH) deduplication of a version,
and the overlap (contamination) of an evaluation set by training data.

``opsloop data dedup`` and ``opsloop data overlap`` (and ``client.data.dedup`` /
``.overlap``) run :mod:`.service` where the blobs are; it reads the table (:mod:`.rows`) and
hands lists of texts to :mod:`.engine`, which normalises and hashes them (:mod:`.text`),
signs them (:mod:`.minhash`), bands the signatures (:mod:`.lsh`) and clusters the verified
pairs (:mod:`.clusters`).

The package is named ``duplicates``, not ``dedup``: ``opsloop.data.dedup`` is the module-level
function, which a subpackage of that name would replace on first import.

Next slices slot in beside ``exact`` and ``near``: semantic deduplication (embeddings,
k-means, SemDeDup's ``1 - eps`` cosine within a cluster) as a third method of the engine;
exact substrings (a suffix array) for long documents; Ray for tables larger than one machine
(signatures per partition, bands shuffled by key, clusters merged).

Nothing is imported here, so that naming the request shapes (``.entities``) does not load
numpy.
"""
