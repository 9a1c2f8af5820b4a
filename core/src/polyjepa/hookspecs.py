"""The plugin contract: hook specifications for the ``polyjepa`` pluggy project.

Every hook receives ``register`` (:class:`polyjepa.contract.Register`), a callable a
plugin calls once per component it provides::

    register(name, factory, description="")

What each factory must return is typed in :mod:`polyjepa.contract` (``Encoder``,
``Masker``, ``Predictor``, ``Evaluator``, ``Dataset``, ``Recipe``, ``Command``,
``Logger``).

``name`` is namespaced by plugin (``"ecg.vit"``); the core's own components have bare
names. ``factory`` is either a callable or a lazy ``"package.module:attribute"`` string,
so that importing a plugin module stays cheap (no torch, open3d or rasterio at import
time) and ``polyjepa plugins`` answers instantly. Factories are resolved only when the
component is created.

A hook implementation may accept fewer arguments than its specification, so these
specifications only ever gain arguments; none is renamed or removed.
"""

from __future__ import annotations

from typing import Any

import pluggy

from .contract import Register

PROJECT_NAME = "polyjepa"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def polyjepa_register_encoders(register: Register) -> Any:
    """Register encoders: modules that tokenise a batch into a token grid and embed it.

    ``factory(**kwargs)`` returns a :class:`polyjepa.TokenEncoder` (a ``torch.nn.Module``)
    with ``embed_dim``, ``grid(batch) -> tuple[int, ...]`` (the token layout the masker
    sees) and ``forward(batch, keep=None) -> Tensor[B, N_keep, embed_dim]`` that runs only
    on the kept token indices. A fixed target such as SAR-JEPA's gradient features is an
    encoder too (one without trainable parameters).

    The ``[encoder]`` section's keys are the factory's keyword arguments, checked against
    its signature (so declare every argument; a ``**kwargs`` catch-all would swallow a
    misspelt key). Arguments that follow from the data come from the dataset's
    ``encoder_hints``: a hint fills only an argument the factory declares and the config
    leaves unset; the config wins. Create every weight in ``__init__`` from torch's global
    generator (end with :func:`polyjepa.init_weights` for the ViT convention): the
    random-init baseline rebuilds the encoder from its factory under the run's seed.
    ``tokenize(batch)`` must return ``[B, prod(grid), embed_dim]``; the first batch of
    every run checks this and names the encoder and its plugin when it does not hold.

    :param register: call ``register(name, factory, description="")`` once per
        encoder; the factory returns a :class:`polyjepa.contract.Encoder`.
    """


@hookspec
def polyjepa_register_maskers(register: Register) -> Any:
    """Register maskers: samplers of context and target token sets on a grid.

    ``factory(**kwargs)`` returns a callable ``masker(grid, batch_size, generator,
    valid=None) -> polyjepa.Masks`` whose index tensors are ``[B, N]`` long tensors with
    the same count for every sample, inside the grid, drawn only among valid tokens, with
    context and targets disjoint, and reproducible from the ``torch.Generator``. Target
    sets may overlap one another (I-JEPA's blocks do); none may overlap the context.
    :func:`polyjepa.choose` turns per-sample boolean masks into such equal-size index
    sets. ``grid`` is the encoder's token layout, ``batch_size`` the global batch (a
    data-parallel rank keeps its rows), ``valid`` a bool ``[B, N]`` tensor or ``None``.

    :param register: call ``register(name, factory, description="")`` once per
        masker; the factory returns a :class:`polyjepa.contract.Masker`.
    """


@hookspec
def polyjepa_register_predictors(register: Register) -> Any:
    """Register predictors: modules that predict target-token embeddings from context.

    ``factory(embed_dim=..., out_dim=..., **kwargs)`` returns a module with
    ``forward(context, context_idx, target_idx, grid) -> Tensor[B, N_target, out_dim]``.

    :param register: call ``register(name, factory, description="")`` once per
        predictor; the factory returns a :class:`polyjepa.contract.Predictor`.
    """


@hookspec
def polyjepa_register_evaluators(register: Register) -> Any:
    """Register evaluators: metrics computed from an encoder's embeddings.

    ``factory(**kwargs)`` returns a callable ``evaluator(ctx) -> dict[str, float]`` where
    ``ctx`` is a :class:`polyjepa.EvalContext` (pooled embeddings, labels, groups, the
    encoder and the dataset). Set ``needs_labels = True`` on the callable when it can only
    run on labelled data; it is then skipped, with a note, on unlabelled data.

    :param register: call ``register(name, factory, description="")`` once per
        evaluator; the factory returns a :class:`polyjepa.contract.Evaluator`.
    """


@hookspec
def polyjepa_register_datasets(register: Register) -> Any:
    """Register dataset readers: a domain's files turned into samples.

    ``factory(data, **kwargs)`` returns a map-style dataset (``__len__``,
    ``__getitem__``) whose items are dicts of tensors: ``"x"`` (the encoder input), and
    optionally ``"y"`` (label), ``"valid"`` (bool ``[N]`` over the token grid) and
    ``"group"`` (e.g. patient id, used for group-wise evaluation splits). ``data`` is a
    path or an in-memory object; ``None`` means the reader's bundled demo data, if any.

    Optional attributes: ``task`` (``"classification"``, ``"regression"`` or
    ``"multilabel"``; otherwise evaluators read it off the labels), ``encoder_hints``
    (dict of encoder arguments that follow from the data, such as channel counts) and
    ``state`` (JSON-able dict, e.g. a tabular schema, saved with the run and passed back
    as ``state=`` when the run's encoder is used on new data) and ``label_names`` (the
    class names of ``y``'s indices, for reports; keep them in ``state`` so new data gets
    the same indices).

    How a config reaches the factory: the ``[dataset]`` section's ``name`` picks the
    factory, ``data`` comes from ``--data`` (or ``data=``), and every other key is passed
    as a keyword argument, checked against the factory's signature. The ``state`` of the
    dataset a run trained on is saved in ``run.json`` (``config.dataset_state``); when
    ``embed``, ``evaluate`` or ``load_encoder`` read data for that run, the same section
    is passed again with ``state=``. A reader should take every setting it saved from the
    state unless the call gives it explicitly, and refuse (``ConfigError``) an explicit
    value the trained encoder cannot use (another patch size).

    :param register: call ``register(name, factory, description="")`` once per
        dataset; the factory returns a :class:`polyjepa.contract.Dataset`.
    """


@hookspec
def polyjepa_register_recipes(register: Register) -> Any:
    """Register recipes: a domain's default wiring and hyper-parameters.

    ``factory()`` returns a nested dict config with the sections ``dataset``,
    ``encoder``, ``masker``, ``predictor``, ``target``, ``loss``, ``train`` and
    ``evaluators`` (see :func:`polyjepa.default_config`), plus an optional ``demo``
    section: ``{"data": ..., "kind": "real" | "simulated", "description": ...,
    "overrides": {...}}`` used by ``polyjepa demo``. Any value can be overridden from a
    TOML/YAML file or the command line.

    :param register: call ``register(name, factory, description="")`` once per
        recipe; the factory returns a :class:`polyjepa.contract.Recipe`.
    """


@hookspec
def polyjepa_register_commands(register: Register) -> Any:
    """Register command-line commands: ``polyjepa <name> ARGS...``.

    ``factory`` is a callable ``main(argv: list[str]) -> int`` (an exit status) that
    parses the arguments after the command name itself, e.g. ``register("ecg",
    "polyjepa_ecg.__main__:main")`` makes ``polyjepa ecg download mitdb DIR`` work. Names
    are bare domain names and may not shadow the core's own commands.

    :param register: call ``register(name, factory, description="")`` once per
        command; the factory returns a :class:`polyjepa.contract.Command`.
    """


@hookspec
def polyjepa_register_loggers(register: Register) -> Any:
    """Register loggers: sinks for a run's metrics, such as an experiment tracker.

    ``factory()`` returns an object with ``start(run_dir, config, state) -> dict``,
    ``log_metrics(step, row)``, ``log_results(name, metrics)``, ``log_artifact(path)`` and
    ``finish(status)``. A run names its loggers in ``train.loggers`` (default
    ``["jsonl", "tensorboard"]``). The trainer opens them on the main rank once the run
    folder exists, sends every metrics row (RankMe included), and calls ``finish`` with
    ``"complete"`` or ``"failed"``. What ``start`` returns (e.g. a tracker's run id) is
    saved in ``run.json["loggers"][name]`` and passed back as ``state`` when the run
    resumes, or when ``evaluate`` (``log_results("evaluate", ...)``) and ``report``
    (``log_artifact`` of each PNG) re-open the run's loggers. Import a tracker's package
    inside ``start``, not at module level, and raise :class:`polyjepa.ConfigError` naming
    the ``pip install`` that fixes a missing one.

    :param register: call ``register(name, factory, description="")`` once per
        logger; the factory returns a :class:`polyjepa.contract.Logger`.
    """
