"""render: host side of rendering (scene specs, Blender processes, Ray scheduling, outputs)."""
