"""Duplicate rows in text tables: exact, near (MinHash-LSH) and semantic (SemDeDup)
deduplication of a version, and the overlap (contamination) of an evaluation set by training
data.

``opsloop data dedup`` and ``opsloop data overlap`` (and ``client.data.dedup`` /
``.overlap``) run :mod:`.service` where the blobs are; it scans the table (:mod:`.rows`),
never held whole, and hands its text column to :mod:`.engine` (converted to ``str`` a slice
at a time), which sketches it a chunk of rows at a time,
spilling to disk past a row budget (:mod:`.sketch`): normalises and hashes them
(:mod:`.text`), signs them (:mod:`.minhash`), bands the signatures (:mod:`.lsh`), embeds and
clusters them by meaning (:mod:`.semantic`, with the embedder of :mod:`.ports` handed in from
above) and clusters the verified pairs (:mod:`.clusters`).

The package is named ``duplicates``, not ``dedup``: ``opsloop.data.dedup`` is the module-level
function, which a subpackage of that name would replace on first import.

For tables larger than one machine, :mod:`.on_ray` finds the same clusters with Ray tasks
(signatures per partition, bands shuffled by key, clusters merged): ``--executor ray``, the
same new version and report; and the same overlap report (train and eval joined by key).

After the row methods, :mod:`.substring` cuts spans repeated inside rows (a suffix array).

Next slices: semantic dedup on Ray; on Ray, partitions read by the tasks
themselves (the driver still cuts the texts into partitions of Python strings, all at once).

Nothing is imported here, so that naming the request shapes (``.entities``) does not load
numpy.
"""
