"""mmviad host-side pipeline: plan → render → annotate → review → clips → qa → eval.

Nothing in this package imports ``bpy``; Blender-side code lives in ``blender_scripts/`` and is
run in a separate process per job.
"""

__version__ = "0.1.0"
