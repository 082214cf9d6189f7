"""eval: run a model (or a baseline) on the QA files, parse its answers with :mod:`pipeline.grammar`
and score them (DESIGN §5). Host-side only; never imports bpy."""
