"""The registry's REST paths, written once (under ``/api``): ``api.py`` declares them and
``remote.py`` requests them. A version's ``{selector}`` is its number, an alias or ``latest``.
Package bytes move through the blob routes (:mod:`opsloop.store.blob_routes`).
"""

from __future__ import annotations

from opsloop.kernel.routes import Route

# -- models ---------------------------------------------------------------------------------------
MODELS = Route("/models")
MODEL = Route("/models/{name}")
MODEL_TAG = Route("/models/{name}/tags/{key:path}")
ALIAS = Route("/models/{name}/aliases/{alias}")
ALIAS_HISTORY = Route("/models/{name}/alias-history")

# -- versions -------------------------------------------------------------------------------------
VERSIONS = Route("/models/{name}/versions")
VERSION = Route("/models/{name}/versions/{selector}")
VERSION_MANIFEST = Route("/models/{name}/versions/{selector}/manifest")
VERSION_TAG = Route("/models/{name}/versions/{selector}/tags/{key:path}")
VERSION_PROMOTE = Route("/models/{name}/versions/{selector}/promote")
VERSION_COMPRESS = Route("/models/{name}/versions/{selector}/compress")
VERSION_EVALUATIONS = Route("/models/{name}/versions/{selector}/evaluations")
VERSION_CARD = Route("/models/{name}/versions/{selector}/card")

# -- evaluations ----------------------------------------------------------------------------------
EVALUATIONS = Route("/evaluations")
EVALUATION = Route("/evaluations/{evaluation_id}")
