"""The ``mmviad`` commands, one module each: ``register(subparsers)`` adds the command's parser
(with ``func`` set to its ``run``), ``run(args) -> int`` runs it. :func:`pipeline.cli.build_parser`
registers them and :func:`pipeline.cli.main` dispatches; :mod:`.common` holds what they share
(the common flags, loading the config, choosing the jobs, the per-stage report).

A command module imports its stage only when it runs, so building the parser stays light."""
