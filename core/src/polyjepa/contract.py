"""The plugin contract as types: what ``register`` takes and what each factory returns.

The hook specifications (:mod:`polyjepa.hookspecs`) name these types; ``create_*`` and
:mod:`polyjepa.testing` check components against them, so a plugin author reads the
contract in one place. They are :class:`typing.Protocol` classes: a component need not
inherit from them (an encoder usually subclasses :class:`polyjepa.TokenEncoder`), and the
runtime checks look for the attributes named here.

Importing this module is cheap (torch appears in annotations only), as plugin modules
that implement hooks import it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    import torch

    from .evaluators import EvalContext
    from .maskers import Masks

Factory = Callable[..., Any]
"""A component factory: a callable, or a lazy ``"package.module:attribute"`` string."""


class Register(Protocol):
    """The callable every ``polyjepa_register_*`` hook receives."""

    def __call__(self, name: str, factory: Factory | str, description: str = "") -> None:
        """Register one component.

        :param name: the component's name, namespaced by plugin (``"ecg.vit"``); the
            core's own components have bare names.
        :param factory: a callable, or a lazy ``"package.module:attribute"`` string that
            is imported only when the component is created.
        :param description: one line shown by ``polyjepa plugins``.
        """


@runtime_checkable
class Encoder(Protocol):
    """An encoder over a token grid (normally a :class:`polyjepa.TokenEncoder`, which is a
    ``torch.nn.Module``)."""

    embed_dim: int

    def grid(self, batch: Any) -> tuple[int, ...]:
        """The token layout of ``batch`` (e.g. ``(leads, time)``), as the masker sees it."""

    def __call__(self, batch: Any, keep: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, N_keep, embed_dim]`` embeddings of the kept token indices ``keep [B, K]``
        (all tokens when ``None``)."""


@runtime_checkable
class Masker(Protocol):
    """A sampler of context and target token sets."""

    def __call__(self, grid: tuple[int, ...], batch_size: int, generator: torch.Generator,
                 valid: torch.Tensor | None = None) -> Masks:
        """Index sets for one global batch.

        :param grid: the encoder's token layout.
        :param batch_size: the global batch size (a data-parallel rank keeps its rows).
        :param generator: the only source of randomness, so masks are reproducible.
        :param valid: bool ``[B, N]``, tokens that hold data (``None``: all do).
        """


@runtime_checkable
class Predictor(Protocol):
    """Predicts target-token embeddings from context embeddings."""

    def __call__(self, context: torch.Tensor, context_idx: torch.Tensor,
                 target_idx: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
        """``[B, N_target, out_dim]`` predictions for the tokens ``target_idx``."""


@runtime_checkable
class Evaluator(Protocol):
    """A metric over an encoder's embeddings; set ``needs_labels = True`` on it when it
    can only run on labelled data."""

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        """Named scores for the embeddings, labels and groups in ``ctx``."""


@runtime_checkable
class Dataset(Protocol):
    """A map-style dataset whose items are dicts of tensors (``"x"``, optionally ``"y"``,
    ``"valid"``, ``"group"``); optional attributes ``task``, ``encoder_hints``,
    ``state`` and ``label_names``."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


@runtime_checkable
class Logger(Protocol):
    """A sink for a run's metrics (an experiment tracker, a file): opened on the main
    rank once the run folder exists, and again by ``evaluate`` and ``report``."""

    def start(self, run_dir: Path, config: dict[str, Any],
              state: dict[str, Any] | None) -> dict[str, Any]:
        """Open the sink for the run in ``run_dir``.

        :param run_dir: the run folder.
        :param config: the run's resolved config (JSON-able).
        :param state: what an earlier ``start`` of this run returned (``None`` for a new
            run), so a resumed run or a later ``evaluate`` attaches to the same tracked run.
        :returns: a small JSON-able state (e.g. a tracker's run id), saved in ``run.json``.
        """

    def log_metrics(self, step: int, row: dict[str, Any]) -> None:
        """One training metrics row (loss, lr, RankMe, ...) of step ``step``."""

    def log_results(self, name: str, metrics: dict[str, float]) -> None:
        """Named results of the run, e.g. ``log_results("evaluate", {...})``."""

    def log_artifact(self, path: Path) -> None:
        """A file of the run, e.g. a report PNG."""

    def finish(self, status: str) -> None:
        """Close the sink; ``status`` is ``"complete"`` or ``"failed"``."""


Recipe = Callable[[], dict[str, Any]]
"""A recipe factory: no arguments, returns a nested config dict."""

Command = Callable[[list[str]], int]
"""A command: parses the arguments after its name, returns an exit status."""
