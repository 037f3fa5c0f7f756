"""The registry half of :class:`opsloop.Client` (``client.models``): register, load, alias,
evaluate, promote through a gate, model cards and lineage.

Package files move like data versions' files: hashed into the local blob cache next to the
process, shared through the blob store, and loaded from a verified, read-only local copy kept
under ``$OPSLOOP_HOME/cache/packages/<package id>`` (so a second load reads nothing remote).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.kernel.numbered import VersionReads
from opsloop.kernel.paging import Page
from opsloop.kernel.step_context import current_rehearsal
from opsloop.registry.backend import RegistryBackend
from opsloop.registry.entities import AliasEvent
from opsloop.registry.entities import ModelVersion
from opsloop.registry.entities import ModelVersionCreate
from opsloop.registry.entities import RegisteredModel
from opsloop.registry.schemas import PromotionRequest
from opsloop.registry.signature import Signature

if TYPE_CHECKING:
    from opsloop.data.sdk import DataClient
    from opsloop.registry.compression_schemas import CompressionResult
    from opsloop.registry.evaluations import Evaluation
    from opsloop.registry.package import LoadedModel

__all__ = ["ModelsClient"]


class ModelsClient(VersionReads[ModelVersion]):
    """The model registry; reach it as ``Client().models`` or through ``opsloop.models``.

    Example:
        >>> version = client.models.register("churn", model, input_example=X.head())
        >>> client.models.promote(version.ref, "champion", policy="gate.yaml")
        >>> client.models.load("churn@champion").predict(X.head(3))
    """

    def __init__(self, backend: RegistryBackend, data: Callable[[], DataClient]) -> None:
        """``data`` gives the data client (package files move through its blob cache) when
        first needed: showing a version never builds it."""
        self._plain = backend
        self._data_client = data

    @property
    def _backend(self) -> RegistryBackend:
        """The backend; while a reproduction runs, wrapped so that its writes are held (the
        wrapper brings the registry's ORM services, which a plain read never needs)."""
        if current_rehearsal() is None:
            return self._plain
        return self._held

    @cached_property
    def _held(self) -> RegistryBackend:
        from opsloop.registry.held import HeldRegistryBackend

        return HeldRegistryBackend(self._plain)

    @cached_property
    def _data(self) -> DataClient:
        return self._data_client()

    def close(self) -> None:
        """Release what the backend holds open (the embedded store's read connection)."""
        self._plain.close()

    # -- registering ----------------------------------------------------------------------------
    def register(
        self,
        name: str,
        model: Any = None,
        *,
        run_id: str | None = None,
        artifact_path: str = "model",
        path: str | os.PathLike[str] | None = None,
        input_example: Any = None,
        signature: Signature | None = None,
        flavor: str | None = None,
        flavor_options: dict[str, Any] | None = None,
        task: str | None = None,
        description: str | None = None,
        tags: dict[str, Any] | None = None,
        card: dict[str, str] | None = None,
    ) -> ModelVersion:
        """Register the next version of ``name`` (the model is created on first use).

        From a live ``model`` (packaged here; ``run_id`` links it to the FINISHED run that
        trained it; inside a pipeline step the version is tagged with the step's run instead),
        from a FINISHED run's logged package (``run_id`` + ``artifact_path``), or from a
        package folder or model file on disk (``path``). ``flavor_options`` go to the flavor
        (a PyTorch module's constructor arguments: ``{"init": {"hidden": 16}}``).
        """
        tags = dict(tags or {})
        if run_id is None and model is not None:
            from opsloop.kernel.step_context import STEP_RUN_TAG
            from opsloop.kernel.step_context import current_step_run_id

            step_run = current_step_run_id()  # registered inside a pipeline step (running)
            if step_run is not None:
                tags.setdefault(STEP_RUN_TAG, step_run)
        text_tags = {k: str(v) for k, v in tags.items()} or None
        about = {"description": description, "tags": text_tags, "card": card}  # the same either way
        body: ModelVersionCreate
        if model is not None or path is not None:
            if model is not None and path is not None:
                raise InvalidInput("pass a model object or a path, not both")
            with tempfile.TemporaryDirectory(prefix="opsloop-package-") as tmp:
                options = {
                    "input_example": input_example,
                    "signature": signature,
                    "task": task,
                    "flavor_options": flavor_options,
                }
                folder = self._package_folder(model, path, Path(tmp), flavor, options)
                manifest = self._data.store_folder(folder)
            files = [(e.path, e.digest, e.size) for e in manifest.entries]
            source = str(path) if path is not None else f"python:{type(model).__name__}"
            body = ModelVersionCreate(files=files, run_id=run_id, source=source, **about)
        elif run_id is not None:
            body = ModelVersionCreate(run_id=run_id, artifact_path=artifact_path, **about)
        else:
            raise InvalidInput("pass a model, a path, or the run_id of a run that logged one")
        return self._backend.register_version(name, body)

    def _package_folder(
        self,
        model: Any,
        path: str | os.PathLike[str] | None,
        tmp: Path,
        flavor: str | None,
        options: dict[str, Any],
    ) -> Path:
        from opsloop.registry.package import META_FILE  # flavors: not for reads
        from opsloop.registry.package import write_package  # flavors: not for reads

        if model is not None:
            write_package(model, tmp / "package", flavor=flavor, **options)
            return tmp / "package"
        source = Path(os.fspath(path))  # type: ignore[arg-type]
        if source.is_dir():
            if not (source / META_FILE).is_file():
                raise InvalidInput(f"{source} is not a model package (no {META_FILE})")
            return source
        if not source.is_file():
            raise InvalidInput(f"{source} does not exist")
        if source.suffix == ".skops":
            from opsloop.registry.flavors import get_flavor

            estimator = get_flavor("sklearn").load(source, [])
            write_package(estimator, tmp / "package", flavor="sklearn", **options)
            return tmp / "package"
        if source.suffix == ".onnx":
            import onnx  # the onnx extra

            write_package(onnx.load(str(source)), tmp / "package", flavor="onnx", **options)
            return tmp / "package"
        raise InvalidInput(
            f"cannot register {source.name}: pass a package folder, a .skops or an .onnx file"
        )

    # -- reading --------------------------------------------------------------------------------
    def load(
        self, ref: str, *, trusted: bool = False, trusted_types: list[str] | None = None
    ) -> LoadedModel:
        """Load ``NAME@N`` / ``NAME@alias`` / ``NAME`` with its flavor's safe loader (a LoRA
        adapter with its base version, loaded the same way).

        Every file is checked against its hash on the way in. ``trusted=True`` is needed for
        pickled (``pyfunc``) packages; ``trusted_types`` extends skops' list of safe types.
        """
        from opsloop.registry.flavors import LoraAdapter
        from opsloop.registry.package import load_package

        version, manifest = self._backend.get_manifest(ref)
        folder = self._data.local_copy(manifest, f"packages/{version.package_id}", verify=True)
        loaded = load_package(folder, trusted=trusted, trusted_types=trusted_types, ref=version.ref)
        if isinstance(loaded.raw, LoraAdapter):  # a LoRA adapter: applied to its base version
            base = self.load(loaded.raw.base, trusted=trusted, trusted_types=trusted_types)
            loaded.raw = loaded.raw.apply(base.raw)
        return loaded

    def get(self, name: str) -> RegisteredModel:
        return self._backend.get_model(name)

    def list(self, max_results: int = 100, page_token: str | None = None) -> Page[RegisteredModel]:
        return self._backend.list_models(max_results, page_token)

    # -- changing -------------------------------------------------------------------------------
    def create(
        self, name: str, *, description: str | None = None, tags: dict[str, Any] | None = None
    ) -> RegisteredModel:
        return self._backend.create_model(
            name, description, {k: str(v) for k, v in (tags or {}).items()} or None
        )

    def update(
        self,
        name: str,
        *,
        description: str | None = None,
        gate_policy: str | Path | dict[str, Any] | None = None,
    ) -> RegisteredModel:
        """Change the description, or store the gate policy promotions use by default."""
        policy = None
        if gate_policy is not None:
            from opsloop.evaluation.gates import load_policy

            policy = load_policy(gate_policy).to_mapping()
        return self._backend.update_model(name, description, policy)

    def delete(self, name: str) -> None:
        self._backend.delete_model(name)

    def delete_version(self, ref: str) -> None:
        """Refused while an alias or a deployment points at the version."""
        self._backend.delete_version(ref)

    def set_tag(self, name: str, key: str, value: Any) -> RegisteredModel:
        return self._backend.set_model_tag(name, key, str(value))

    def set_version_tag(self, ref: str, key: str, value: Any) -> ModelVersion:
        return self._backend.set_version_tag(ref, key, str(value))

    def update_version(
        self, ref: str, *, description: str | None = None, card: dict[str, str] | None = None
    ) -> ModelVersion:
        return self._backend.update_version(ref, description, card)

    def set_alias(self, ref: str, alias: str, *, reason: str | None = None) -> ModelVersion:
        """Point ``alias`` at ``ref`` without a gate; use ``promote`` for gated aliases."""
        return self._backend.set_alias(ref, alias, reason)

    def history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """Every decision about the model's aliases, newest first, with gate verdicts."""
        return self._backend.alias_history(name, alias)

    # -- evaluation and gates -------------------------------------------------------------------
    def evaluate(
        self,
        model: Any,
        data: Any,
        *,
        target: str,
        task: str | None = None,
        slices: list[str] | None = None,
        record: bool = True,
        latency_samples: int = 200,
    ) -> Evaluation:
        """Evaluate a model on data and (for a registered model) store the evaluation.

        ``model`` is a ref (``churn@3``), a ``LoadedModel`` or any object with ``predict``;
        ``data`` a DataFrame or a dataset version ref (``churn-data@2``). An evaluation of a
        registered version on a dataset version is linked to both in the lineage graph.
        """
        from opsloop.evaluation.evaluate import evaluate_frame
        from opsloop.kernel.timeutil import now_ms
        from opsloop.registry.evaluations import Evaluation

        loaded = self.load(model) if isinstance(model, str) else model
        dataset_ref = None
        frame = data
        if isinstance(data, str):
            handle = self._data.get(data)
            dataset_ref, frame = handle.ref, handle.to_pandas()
        report = evaluate_frame(
            loaded,
            frame,
            target=target,
            task=task,
            slices=slices,
            latency_samples=latency_samples,
        )
        model_ref = getattr(loaded, "ref", None)
        if record and model_ref is not None:
            return self._backend.record_evaluation(report, model_ref, dataset_ref)
        return Evaluation(
            evaluation_id=None,
            model_ref=model_ref,
            dataset_ref=dataset_ref,
            task=report["task"],
            target=target,
            metrics=report["metrics"],
            report=report,
            created_at=now_ms(),
            created_by="",
        )

    def evaluation(self, evaluation_id: str) -> Evaluation:
        return self._backend.get_evaluation(evaluation_id)

    def evaluations(self, ref: str) -> list[Evaluation]:
        return self._backend.list_evaluations(ref)

    def promote(
        self,
        ref: str,
        alias: str = "champion",
        *,
        policy: str | Path | dict[str, Any] | None = None,
        force: bool = False,
        reason: str | None = None,
    ) -> AliasEvent:
        """Move ``alias`` to ``ref`` if it passes the gate (``policy``, else the model's).

        The returned event says whether the alias ``moved`` and carries the ``verdict`` with
        every number used; it is recorded in the alias history either way. ``force`` skips
        the gate and needs a ``reason``, which is recorded.
        """
        mapping = None
        if policy is not None:
            from opsloop.evaluation.gates import load_policy

            mapping = load_policy(policy).to_mapping()  # a bad policy fails here, first
        request = PromotionRequest.model_construct(
            alias=alias, policy=mapping, force=force, reason=reason
        )
        return self._backend.promote(ref, request)

    def compress(
        self,
        ref: str,
        method: str,
        *,
        amount: float | None = None,
        data: str | None = None,
        target: str | None = None,
        max_quality_drop: float = 0.01,
        min_size_ratio: float = 3.0,
        alias: str | None = None,
        description: str | None = None,
    ) -> CompressionResult:
        """Register a compressed copy of ``ref`` as the model's next version and judge it.

        ``method`` is ``onnx-int8`` (scikit-learn or ONNX versions), ``dynamic-int8`` or
        ``prune`` (torch and transformers versions; ``amount``: the fraction of each Linear
        weight zeroed, default 0.3). Both versions are measured on package size and one-row
        and batch latency, and with ``data`` (a table data version) on quality: accuracy
        (classifier) or RMSE (regressor) against the ``target`` column, or a causal LM's mean
        next-token loss on the ``target`` text column. The gate passes when the package is at
        least ``min_size_ratio`` times smaller and quality at most ``max_quality_drop`` worse
        (relative); with ``alias``, the decision is recorded in the alias history and the alias
        moves to the new version only on a pass. The new version is registered either way,
        tagged ``compressed_from`` and linked to the original in the lineage graph.

        Example:
            >>> result = client.models.compress("churn@3", "onnx-int8", data="churn-data@2",
            ...                                 target="churned", alias="edge")
            >>> result.size_ratio, result.quality.drop, result.passed
        """
        from opsloop.registry.compression_schemas import CompressionRequest

        request = CompressionRequest(
            method=method,
            amount=amount,
            data=data,
            target=target,
            max_quality_drop=max_quality_drop,
            min_size_ratio=min_size_ratio,
            alias=alias,
            description=description,
        )
        return self._backend.compress(ref, request)

    def card(self, ref: str, *, markdown: bool = False) -> Any:
        """The model card: facts the registry knows plus what people wrote."""
        return self._backend.card(ref, markdown)

    def lineage(self, ref: str, *, kind: str | None = None) -> dict[str, Any]:
        """Upstream and downstream of a model version, data version or run (``kind="model"``,
        ``"data"``, ``"run"``; by default whichever kind has something named ``ref``)."""
        return self._backend.lineage(kind, ref)
